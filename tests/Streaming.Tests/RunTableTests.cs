using Streaming.Cli.Commands;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// <c>run</c>'s result table and <c>report</c>'s title, read from the metrics' declarations: each kind of run prints what it
/// printed when the rows were spelled out in <c>RunCommand</c> (the expected texts are that code's output).
/// </summary>
public class RunTableTests
{
    private static readonly Dictionary<string, string> Tables = new(StringComparer.Ordinal)
    {
        ["default"] = """

            result                             model          top-1 (test)
            baseline (supervised on D)         cnn-small            80.28%
            teacher (on D)                     resnet20             83.35%
            student, pre-trained on D-hat      cnn-small            76.53%
            student, fine-tuned on D           cnn-small            80.04%
            pseudo-label precision of D-hat    K=2000 P=1           95.22%
            wall time 9.9 min; 7 stages ran, reused: ingest-train, ingest-test, split

            """,
        ["semi-weak"] = """

            result                               model          top-1 (test)
            baseline (supervised on D)           cnn-small            80.28%
            control (baseline, student's budget) cnn-small            81.23%
            teacher, pre-trained on W's tags     resnet20             50.00%
            teacher (W's tags, then D)           resnet20             83.35%
            student, pre-trained on D-hat        cnn-small            76.53%
            student, fine-tuned on D             cnn-small            80.04%
            weakly supervised (W's tags, then D) cnn-small            79.00%
            balanced-with-tags, fine-tuned       cnn-small            78.00%
            pseudo-label precision of D-hat      K=2000 P=1           95.22%
            tag precision / recall on U                         68.27% / 50.25%
            precision of balanced-with-tags      K=2000               72.50%
            wall time 5.3 min; 17 stages ran, reused: ingest-train, ingest-test, split

            """,
        ["semi-weak-without-truth"] = """

            result                               model          top-1 (test)
            baseline (supervised on D)           resnet20             50.00%
            teacher, pre-trained on W's tags     resnet20             25.00%
            teacher (W's tags, then D)           resnet20             62.50%
            student, pre-trained on D-hat        resnet20             12.50%
            student, fine-tuned on D             resnet20             87.50%
            weakly supervised (W's tags, then D) resnet20             20.00%
            balanced-with-tags, fine-tuned       resnet20             40.00%
            pseudo-label precision of D-hat      K=16000 P=10              -
            tag precision / recall on U                                - / -
            precision of balanced-with-tags      K=16000                   -
            wall time 5.3 min; 18 stages ran

            """,
        ["imported-onnx"] = """

            result                             model          top-1 (test)
            baseline (supervised on D)         cnn-small:w2          6.00%
            teacher (on D)                     teacher-cnn.onnx            -
            student, pre-trained on D-hat      cnn-small:w2          6.00%
            student, fine-tuned on D           cnn-small:w2          7.00%
            pseudo-label precision of D-hat    K=10 P=2            100.00%
            wall time 5.3 min; 0 stages ran, reused: ingest-train, ingest-test, split, baseline, teacher, score, select, dhat-images, student, finetune

            """,
    };

    private static readonly Dictionary<string, string> Titles = new(StringComparer.Ordinal)
    {
        ["default"] = "fashion-mnist: baseline 80.28%, teacher 83.35%, student 76.53% pre-trained, 80.04% fine-tuned",
        ["semi-weak"] = "semi: baseline 80.28%, teacher 83.35%, student 76.53% pre-trained, 80.04% fine-tuned",
        ["semi-weak-without-truth"] = "column: baseline 50.00%, teacher 62.50%, student 12.50% pre-trained, 87.50% fine-tuned",
        ["imported-onnx"] = "onnx: baseline 6.00%, teacher -, student 6.00% pre-trained, 7.00% fine-tuned",
    };

    public static TheoryData<string> Runs => [.. RunTableRecords.All.Keys];

    [Theory]
    [MemberData(nameof(Runs))]
    public void Table_OfEachKindOfRun_PrintsTheRowsItAlwaysHas(string run)
    {
        Assert.Equal(Tables[run].ReplaceLineEndings("\n"), RunCommand.Table(RunTableRecords.All[run]()).ReplaceLineEndings("\n"));
    }

    [Theory]
    [MemberData(nameof(Runs))]
    public void ReportTitle_OfEachKindOfRun_IsAsItWas(string run)
    {
        Assert.Equal(Titles[run], ReportCommand.Title(RunTableRecords.All[run]()));
    }
}
