using System.Text.Json;

namespace Streaming.Core.Selection;

/// <summary>
/// What selection and reports read from <c>scoring.json</c>: P', the class names, the scored dataset and the
/// score shards (path relative to the scores folder, rows, hash).
/// </summary>
internal sealed record ScoringInfo(int TopP, IReadOnlyList<string> Classes, string? Dataset, IReadOnlyList<(string File, long Rows, string Sha256)> Shards)
{
    public const string FileName = "scoring.json";

    public long Rows => Shards.Sum(s => s.Rows);

    public static ScoringInfo Load(string scoresDir)
    {
        string path = Path.Combine(scoresDir, FileName);
        if (!File.Exists(path)) throw new StreamingException($"{path}: not found (is {scoresDir} the output of 'streaming score'?)");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            var classes = root.GetProperty("classes").EnumerateArray().Select(c => c.GetString() ?? "").ToList();
            var shards = root.GetProperty("shards").EnumerateArray()
                .Select(s => (s.GetProperty("file").GetString() ?? "", s.GetProperty("rows").GetInt64(), s.GetProperty("sha256").GetString() ?? ""))
                .ToList();
            string? dataset = root.TryGetProperty("dataset", out var d) ? d.GetString() : null;
            return new ScoringInfo(root.GetProperty("top_p").GetInt32(), classes, dataset, shards);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new StreamingException($"{path}: bad scoring manifest ({e.Message})", e);
        }
    }
}
