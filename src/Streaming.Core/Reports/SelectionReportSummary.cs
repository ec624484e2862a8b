using System.Text.Json.Serialization;

namespace Streaming.Core.Reports;

/// <summary>
/// The numbers behind a selection report, ready to serialize as JSON. Precision is the fraction of D-hat's
/// (class, image) entries whose withheld true label is the class; an image selected under two classes counts
/// once under each, and entries whose image has no withheld label are left out of both counts.
/// </summary>
public sealed record SelectionReportSummary
{
    [JsonPropertyName("k")] public int K { get; init; }
    [JsonPropertyName("p")] public int P { get; init; }
    [JsonPropertyName("balance")] public string Balance { get; init; } = "";
    [JsonPropertyName("rows_scored")] public long RowsScored { get; init; }
    /// <summary>|D-hat|: (class, image) entries.</summary>
    [JsonPropertyName("selected")] public long Selected { get; init; }
    [JsonPropertyName("distinct_images")] public long DistinctImages { get; init; }
    [JsonPropertyName("classes")] public IReadOnlyList<string> Classes { get; init; } = [];
    /// <summary>Images of each class in D-hat.</summary>
    [JsonPropertyName("counts")] public IReadOnlyList<int> Counts { get; init; } = [];
    /// <summary>Whether U's withheld labels were found; without them every precision is null.</summary>
    [JsonPropertyName("labels_known")] public bool LabelsKnown { get; init; }
    /// <summary>Pseudo-label precision of each class; null without labels or when the class has no labeled image in D-hat.</summary>
    [JsonPropertyName("class_precision")] public IReadOnlyList<double?> ClassPrecision { get; init; } = [];
    /// <summary>Pseudo-label precision over all of D-hat.</summary>
    [JsonPropertyName("precision")] public double? Precision { get; init; }
    /// <summary>The mean teacher probability of D-hat's entries for their class; null for an empty D-hat.</summary>
    [JsonPropertyName("mean_score")] public double? MeanScore { get; init; }
    [JsonPropertyName("k_sweep")] public IReadOnlyList<KSweepPoint> KSweep { get; init; } = [];
    /// <summary>Per class, what its contact sheet shows.</summary>
    [JsonPropertyName("contact_sheets")] public IReadOnlyList<ContactSheetSummary> ContactSheets { get; init; } = [];
    /// <summary>Everything the report wrote, relative to its folder.</summary>
    [JsonPropertyName("files")] public IReadOnlyList<string> Files { get; init; } = [];
    /// <summary>What the reader should know: missing labels, images not found in U, class lists that differ.</summary>
    [JsonPropertyName("notes")] public IReadOnlyList<string> Notes { get; init; } = [];
}

/// <summary>D-hat as it would be at one K (same scores, P, balance mode and seed).</summary>
public sealed record KSweepPoint(
    [property: JsonPropertyName("k")] int K,
    [property: JsonPropertyName("selected")] long Selected,
    [property: JsonPropertyName("precision")] double? Precision,
    [property: JsonPropertyName("mean_score")] double? MeanScore);

/// <summary>One class's contact sheet: the file and its cells, best rank first.</summary>
public sealed record ContactSheetSummary(
    [property: JsonPropertyName("class")] int Class,
    [property: JsonPropertyName("file")] string File,
    [property: JsonPropertyName("cells")] IReadOnlyList<ContactCell> Cells);

/// <summary>One image of a contact sheet: its rank in the class, id, teacher score, and true class when known.</summary>
public sealed record ContactCell(
    [property: JsonPropertyName("rank")] int Rank,
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("score")] float Score,
    [property: JsonPropertyName("true_class")] int? TrueClass);
