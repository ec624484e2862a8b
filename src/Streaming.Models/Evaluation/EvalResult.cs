using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Streaming.Models.Evaluation;

/// <summary>Accuracy of one class.</summary>
public sealed record ClassAccuracy(
    [property: JsonPropertyName("class")] int Class,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("images")] long Images,
    [property: JsonPropertyName("accuracy")] double Accuracy);

/// <summary>What <c>streaming eval</c> reports: top-1, top-5, per-class accuracy and the confusion matrix (rows = true class).</summary>
public sealed record EvalResult(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("data")] string Data,
    [property: JsonPropertyName("images")] long Images,
    [property: JsonPropertyName("top1")] double Top1,
    [property: JsonPropertyName("top5")] double? Top5,
    [property: JsonPropertyName("loss")] double Loss,
    [property: JsonPropertyName("per_class")] IReadOnlyList<ClassAccuracy> PerClass,
    [property: JsonPropertyName("confusion")] long[][] Confusion)
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public string ToJson() => JsonSerializer.Serialize(this, Options) + "\n";

    /// <summary>A console table: the headline numbers, per-class accuracy, and the confusion matrix.</summary>
    public string ToTable()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"{Images:N0} images: top-1 {Top1:P2}{(Top5 is double t5 ? $", top-5 {t5:P2}" : "")}, mean loss {Loss:F4}");
        int nameWidth = Math.Min(20, PerClass.Max(c => c.Name.Length));
        sb.AppendLine();
        sb.AppendLine($"  {"class".PadRight(nameWidth + 6)} {"images",8} {"accuracy",9}");
        foreach (var c in PerClass)
            sb.AppendLine(inv, $"  {c.Class,4}  {Clip(c.Name, nameWidth).PadRight(nameWidth)} {c.Images,8:N0} {c.Accuracy,9:P1}");
        if (Confusion.Length <= 20)
        {
            sb.AppendLine();
            sb.AppendLine("  confusion (rows: true class, columns: predicted)");
            int w = Math.Max(5, Confusion.SelectMany(r => r).DefaultIfEmpty(0).Max().ToString(inv).Length + 1);
            sb.Append("      ");
            for (int j = 0; j < Confusion.Length; j++) sb.Append(j.ToString(inv).PadLeft(w));
            sb.AppendLine();
            for (int i = 0; i < Confusion.Length; i++)
            {
                sb.Append(inv, $"  {i,4}");
                foreach (var v in Confusion[i]) sb.Append(v.ToString(inv).PadLeft(w));
                sb.AppendLine();
            }
        }
        return sb.ToString();
    }

    private static string Clip(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
