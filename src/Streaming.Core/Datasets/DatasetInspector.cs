using System.Globalization;
using System.Text;
using Streaming.Core.Decode;

namespace Streaming.Core.Datasets;

/// <summary>The human-readable inventory of a dataset folder that <c>streaming inspect</c> prints.</summary>
public static class DatasetInspector
{
    public static string Describe(string dataset, int maxQuarantineLines = 10)
    {
        var m = DatasetManifest.Load(dataset);
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"dataset   {m.Name}  ({Path.GetFullPath(dataset)})");
        sb.AppendLine(inv, $"origin    {m.Origin}");
        sb.AppendLine(inv, $"images    {m.Rows:N0}  (labeled {m.Labeled:N0}, unlabeled {m.Unlabeled:N0})");
        sb.AppendLine(inv, $"verified  {(m.Verified ? "yes (every image decoded)" : "no (--no-verify)")}");
        sb.AppendLine(inv, $"dropped   {m.Duplicates:N0} exact duplicates, {m.Quarantined:N0} quarantined");
        if (m.WithheldLabelsFile is not null) sb.AppendLine(inv, $"withheld  true labels of U in {m.WithheldLabelsFile}");
        foreach (var (k, v) in m.Parameters) sb.AppendLine(inv, $"param     {k} = {v}");

        sb.AppendLine();
        sb.AppendLine(inv, $"classes   {m.Classes.Count}");
        if (m.Classes.Count > 0)
        {
            long max = Math.Max(1, m.ClassCounts.DefaultIfEmpty(0).Max());
            int nameWidth = Math.Min(24, m.Classes.Max(c => c.Length));
            for (int i = 0; i < m.Classes.Count; i++)
            {
                string name = m.Classes[i].Length > nameWidth ? m.Classes[i][..(nameWidth - 1)] + "…" : m.Classes[i];
                int bar = (int)Math.Round(40.0 * m.ClassCounts[i] / max);
                sb.AppendLine(inv, $"  {i,4}  {name.PadRight(nameWidth)}  {m.ClassCounts[i],10:N0}  {new string('#', bar)}");
            }
        }

        sb.AppendLine();
        sb.AppendLine(inv, $"shards    {m.Shards.Count}  ({m.Compression}, up to {m.ShardSize:N0} rows each)");
        foreach (var s in m.Shards)
            sb.AppendLine(inv, $"  {s.File}  {s.Rows,8:N0} rows  {FormatBytes(s.Bytes),10}  sha256 {s.Sha256[..16]}…");

        sb.AppendLine();
        if (m.Quarantined == 0)
        {
            sb.AppendLine("quarantine  empty");
        }
        else
        {
            sb.AppendLine(inv, $"quarantine  {m.Quarantined:N0} records in {m.QuarantineFile}");
            foreach (var (reason, n) in m.QuarantineReasons.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal))
                sb.AppendLine(inv, $"  {n,8:N0}  {reason}");
            string path = Path.Combine(dataset, m.QuarantineFile ?? DatasetWriter.QuarantineFileName);
            if (File.Exists(path))
            {
                sb.AppendLine("  first entries:");
                foreach (var line in File.ReadLines(path).Take(maxQuarantineLines)) sb.AppendLine("    " + line);
            }
        }
        return sb.ToString();
    }

    /// <summary>The same inventory as one JSON document (<c>inspect --json</c>): the shape is in docs/json.md.</summary>
    public static string DescribeJson(string dataset)
    {
        var m = DatasetManifest.Load(dataset);
        var doc = new
        {
            dataset = m.Name,
            path = Path.GetFullPath(dataset),
            origin = m.Origin,
            images = m.Rows,
            labeled = m.Labeled,
            unlabeled = m.Unlabeled,
            verified = m.Verified,
            duplicates = m.Duplicates,
            quarantined = m.Quarantined,
            withheld_labels = m.WithheldLabelsFile,
            classes = m.Classes.Select((name, i) => new { index = i, name, count = i < m.ClassCounts.Count ? m.ClassCounts[i] : 0 }),
            compression = m.Compression.ToString(),
            shard_size = m.ShardSize,
            shards = m.Shards.Select(x => new { file = x.File, rows = x.Rows, bytes = x.Bytes, sha256 = x.Sha256 }),
            quarantine_reasons = m.QuarantineReasons,
        };
        return System.Text.Json.JsonSerializer.Serialize(doc, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    public static string FormatBytes(long bytes)
    {
        string[] units = ["B", "KB", "MB", "GB", "TB"];
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
        return string.Create(CultureInfo.InvariantCulture, $"{v:0.#} {units[u]}");
    }
}
