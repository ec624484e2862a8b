using System.Globalization;
using System.Net;
using System.Text;
using Streaming.Core.Selection;

namespace Streaming.Core.Reports;

/// <summary>The report's <c>index.html</c>: one self-contained page (inline style, no script) linking the PNGs beside it by relative paths.</summary>
internal static class ReportPage
{
    private const string Style = """
        body { font-family: "DejaVu Sans", system-ui, sans-serif; color: #222; max-width: 1200px; margin: 2em auto; padding: 0 1em; }
        h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; } h3 { margin: 1.2em 0 0.3em; font-size: 1.05em; }
        table { border-collapse: collapse; margin: 0.6em 0 1.2em; }
        th, td { padding: 3px 12px; border-bottom: 1px solid #e2e2e2; text-align: left; vertical-align: top; }
        .n { text-align: right; font-variant-numeric: tabular-nums; }
        tr.here td { font-weight: bold; background: #fff0f0; }
        img { max-width: 100%; height: auto; }
        .note { background: #fff6d6; border-left: 4px solid #e0b000; padding: 6px 12px; margin: 0.4em 0; }
        code { font-size: 0.92em; }
        """;

    public static void Write(string path, string title, SelectionReportInputs inputs, SelectionManifest selection, SelectionReportSummary summary, DhatStats dhat)
    {
        static string H(string s) => WebUtility.HtmlEncode(s);
        static string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
        static string Score(double? s) => s is double v ? v.ToString("0.0000", CultureInfo.InvariantCulture) : "n/a";
        var names = summary.Classes;
        var b = new StringBuilder();
        b.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>").Append(H(title)).Append("</title>\n<style>\n")
            .Append(Style).Append("\n</style>\n</head>\n<body>\n<h1>").Append(H(title)).Append("</h1>\n");
        foreach (var note in summary.Notes) b.Append("<p class=\"note\">").Append(H(note)).Append("</p>\n");

        b.Append("<h2>Selection</h2>\n<table>\n");
        void Row(string name, string html) => b.Append("<tr><th>").Append(H(name)).Append("</th><td>").Append(html).Append("</td></tr>\n");
        Row("K", $"{N(selection.K)} images per class");
        Row("P", selection.P == 1 ? "1 (an image competes only in its top class)" : $"{selection.P} (an image competes in its top {selection.P} classes)");
        Row("balance", H(selection.Balance) + (selection.Balance == "random" ? $", seed {selection.Seed}" : ""));
        Row("rows scored", N(summary.RowsScored));
        Row("|D-hat|", $"{N(summary.Selected)} entries, {N(summary.DistinctImages)} distinct images, {names.Count} classes");
        Row("pseudo-label precision", summary.LabelsKnown ? SelectionReport.Percent(summary.Precision) + $" ({N(dhat.Correct.Sum())} of {N(dhat.Known.Sum())} right)" : "n/a (U's true labels are unknown)");
        Row("mean teacher score", Score(summary.MeanScore));
        Row("selection", $"<code>{H(inputs.SelectionDir)}</code>");
        Row("scores", $"<code>{H(inputs.ScoresDir)}</code>");
        Row("unlabeled data (U)", $"<code>{H(inputs.UnlabeledDir)}</code>");
        b.Append("</table>\n");

        b.Append("<h2>Classes</h2>\n<img src=\"").Append(SelectionReport.BalanceFile).Append("\" alt=\"images and pseudo-label precision per class\">\n");
        b.Append("<table>\n<tr><th class=\"n\">#</th><th>class</th><th class=\"n\">images</th><th class=\"n\">right / labeled</th><th class=\"n\">precision</th><th class=\"n\">mean score</th><th>contact sheet</th></tr>\n");
        for (int c = 0; c < names.Count; c++)
        {
            b.Append("<tr><td class=\"n\">").Append(c).Append("</td><td>").Append(H(SelectionReport.ClassName(names, c)))
                .Append("</td><td class=\"n\">").Append(N(summary.Counts[c]))
                .Append("</td><td class=\"n\">").Append(summary.LabelsKnown ? $"{N(dhat.Correct[c])} / {N(dhat.Known[c])}" : "n/a")
                .Append("</td><td class=\"n\">").Append(SelectionReport.Percent(summary.ClassPrecision[c]))
                .Append("</td><td class=\"n\">").Append(Score(summary.Counts[c] == 0 ? null : dhat.ScoreSums[c] / summary.Counts[c]))
                .Append("</td><td><a href=\"#class-").Append(c).Append("\">").Append(H(summary.ContactSheets[c].File)).Append("</a></td></tr>\n");
        }
        b.Append("</table>\n");

        b.Append("<h2>").Append(summary.LabelsKnown ? "Precision against K" : "Mean teacher score against K").Append("</h2>\n");
        b.Append("<p>D-hat rebuilt from the stored score shards at each K, with the same P, balance mode and seed. ")
            .Append(summary.LabelsKnown ? "Precision: the share of (class, image) entries whose true label is the class." : "U's true labels are unknown, so only the mean teacher score is shown.")
            .Append("</p>\n");
        b.Append("<img src=\"").Append(SelectionReport.SweepFile).Append("\" alt=\"pseudo-label precision and mean teacher score against K\">\n");
        b.Append("<table>\n<tr><th class=\"n\">K</th><th class=\"n\">|D-hat|</th><th class=\"n\">precision</th><th class=\"n\">mean score</th></tr>\n");
        foreach (var p in summary.KSweep)
        {
            b.Append(p.K == selection.K ? "<tr class=\"here\">" : "<tr>")
                .Append("<td class=\"n\">").Append(N(p.K)).Append("</td><td class=\"n\">").Append(N(p.Selected))
                .Append("</td><td class=\"n\">").Append(SelectionReport.Percent(p.Precision)).Append("</td><td class=\"n\">").Append(Score(p.MeanScore)).Append("</td></tr>\n");
        }
        b.Append("</table>\n");

        b.Append("<h2>Contact sheets</h2>\n<p>Per class, the images of D-hat at ranks 1, 10, 100, ... with their teacher score")
            .Append(summary.LabelsKnown ? " and true class; a red frame and caption mark a wrong pseudo-label" : "")
            .Append(".</p>\n");
        foreach (var sheet in summary.ContactSheets)
        {
            string name = SelectionReport.ClassName(names, sheet.Class);
            b.Append("<h3 id=\"class-").Append(sheet.Class).Append("\">").Append(sheet.Class).Append(": ").Append(H(name)).Append("</h3>\n")
                .Append("<img loading=\"lazy\" src=\"").Append(H(sheet.File)).Append("\" alt=\"D-hat images of class ").Append(H(name)).Append("\">\n");
        }
        b.Append("</body>\n</html>\n");
        File.WriteAllText(path, b.ToString());
    }
}
