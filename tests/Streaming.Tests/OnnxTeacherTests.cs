using Streaming.Core.Scoring;
using Streaming.Core.Options;
using Streaming.Core.Ingest;
using Streaming.Core.Selection;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;
using Streaming.Engine.Scoring;
using Xunit;

namespace Streaming.Tests;

/// <summary>A teacher exported to ONNX by Debian's python3-torch (tests/fixtures/make_onnx_teacher_fixture.py) scores like PyTorch.</summary>
[Collection(nameof(ProcessState))]
public class OnnxTeacherTests
{
    private static string Fixture(string name) => TestPaths.Fixture(name);
    private static float[] ReadF32(string name) => TestPaths.ReadF32(name);

    [Fact]
    public void OnnxTeacher_MatchesPyTorch_Top1AndProbabilities()
    {
        using var teacher = new OnnxTeacher(Fixture("teacher-cnn.onnx"));
        Assert.Equal(10, teacher.Spec.NumClasses);
        Assert.Equal(28, teacher.Spec.ImageSize);
        Assert.Equal("Ankle boot", teacher.Spec.Classes[9]);
        var x = ReadF32("teacher-input.f32");
        var expected = ReadF32("teacher-probs.f32");
        var classes = new int[80];
        var probs = new float[80];
        teacher.TopK(x, 8, 10, classes, probs);
        var top1 = new HashSet<int>();
        for (int i = 0; i < 8; i++)
        {
            int pyTop1 = Enumerable.Range(0, 10).MaxBy(j => expected[i * 10 + j]);
            Assert.Equal(pyTop1, classes[i * 10]);
            top1.Add(pyTop1);
            for (int j = 0; j < 10; j++)
                Assert.True(Math.Abs(probs[i * 10 + j] - expected[i * 10 + classes[i * 10 + j]]) < 1e-4, $"image {i}, class {classes[i * 10 + j]}");
        }
        Assert.True(top1.Count >= 3, "the fixture should predict several different classes");
    }

    [Fact]
    public async Task Score_WithAnOnnxTeacher_RunsEndToEnd()
    {
        using var tmp = new TempDir();
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniIdxTest), tmp.Sub("test"));
        var result = await ScoreEngine.RunAsync(new ScoreOptions
        {
            Teacher = Fixture("teacher-cnn.onnx"), Data = tmp.Sub("test"), Out = tmp.Sub("scores"),
            Scoring = new ScoringSpec { TopP = 3, K = 5, P = 1, Compute = new ComputeSpec { Threads = 2 } },
        });
        Assert.Equal(100, result.ImagesScored);
        Assert.Empty(result.FailedShards);
        var labels = IdxReader.Read(TestPaths.MiniIdxTest).Labels;
        long correct = 0;
        await foreach (var row in ScoreShards.ReadAsync(Directory.GetFiles(Path.Combine(tmp.Sub("scores"), "scores"), "*.parquet").Single()))
            if (row.Classes[0] == labels[int.Parse(row.Id["t10k-".Length..])]) correct++;
        // Trained for seconds on 300 images: far from good, far better than chance.
        Assert.InRange(correct, 30, 100);
    }
}
