using System.Text.RegularExpressions;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// Rules for the tests themselves. libtorch's thread count and kernels belong to the process: a test class that runs
/// libtorch in this process must be in the <see cref="ProcessState"/> collection, which never runs beside another, or
/// run it in a child process (<see cref="CliProcess"/>).
/// </summary>
public partial class TestHygieneTests
{
    /// <summary>What runs libtorch in the calling process: training, scoring, evaluation, models, pipelines, profiles, in-process CLI verbs and hosts.</summary>
    [GeneratedRegex(@"\b(Trainer\.(RunAsync|Step)|ScoreEngine\.RunAsync|ScoringSession|Teachers\.Open|ModelZoo\.Create|ModelFile\.(Load|Save)|Evaluator\.EvaluateAsync|FeatureExtractor\.ExtractAsync|new PipelineRunner|PipelineReplay\.|Profiler\.RunAsync|Deduplicator\.RunAsync|torch\.|TorchTeacher|EmbeddingSearch\.|DaemonHost\.|ClusterNode\.|InProcessTestCluster|StreamingCli\.|Kernels\.(Configure|AcquireAsync|PinIsa|PinLike|Current))")]
    private static partial Regex LibtorchUse();

    [GeneratedRegex(@"^(?<attrs>(?:\[[^\]\n]*\]\s*\n)*)public (?:sealed |partial |abstract |static )*class (?<name>\w+)", RegexOptions.Multiline)]
    private static partial Regex ClassDeclaration();

    [GeneratedRegex(@"///[^\n]*|//[^\n]*|""(?:[^""\\\n]|\\.)*""")]
    private static partial Regex CommentOrString();

    /// <summary>
    /// The test classes of some source texts that run libtorch in-process but are not in the serial collection (a
    /// partial class is in it when any of its parts says so).
    /// </summary>
    internal static IEnumerable<string> Unserialized(IEnumerable<string> texts)
    {
        var parts = texts.Select(t => CommentOrString().Replace(t, "")).SelectMany(code =>
        {
            var classes = ClassDeclaration().Matches(code).ToList();
            return classes.Select((c, i) => (Name: c.Groups["name"].Value, Serial: c.Groups["attrs"].Value.Contains("nameof(ProcessState)", StringComparison.Ordinal),
                Body: code[c.Index..(i + 1 < classes.Count ? classes[i + 1].Index : code.Length)]));
        }).ToList();
        var serial = parts.Where(p => p.Serial).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        return parts.Where(p => !serial.Contains(p.Name) && (p.Body.Contains("[Fact", StringComparison.Ordinal) || p.Body.Contains("[Theory", StringComparison.Ordinal))
                && LibtorchUse().IsMatch(p.Body))
            .Select(p => p.Name).Distinct();
    }

    [Fact]
    public void TestClassesThatRunLibtorchInProcess_AreInTheSerialCollection()
    {
        var offenders = Unserialized(Directory.EnumerateFiles(Path.Combine(TestPaths.Root, "tests", "Streaming.Tests"), "*.cs").Select(File.ReadAllText)).ToList();
        Assert.True(offenders.Count == 0, "these test classes run libtorch in this process outside [Collection(nameof(ProcessState))]: " + string.Join(", ", offenders));
    }

    [Fact]
    public void TheRule_FindsAClassOutsideTheCollection_AndAcceptsOneInIt()
    {
        const string outside = "public class A\n{\n    [Fact]\n    public async Task T() => await Trainer.RunAsync(o);\n}\n";
        const string inside = "[Collection(nameof(ProcessState))]\npublic class A\n{\n    [Fact]\n    public async Task T() => await Trainer.RunAsync(o);\n}\n";
        const string noTorch = "public class A\n{\n    [Fact]\n    public void T() => Assert.True(true); // Trainer.RunAsync in a comment\n}\n";
        const string otherPart = "public partial class A\n{\n    [Fact]\n    public async Task U() => await Trainer.RunAsync(o);\n}\n";
        Assert.Equal(["A"], Unserialized([outside]));
        Assert.Empty(Unserialized([inside]));
        Assert.Empty(Unserialized([noTorch]));
        Assert.Empty(Unserialized([inside.Replace("public class", "public partial class"), otherPart]));
        Assert.Equal(["A"], Unserialized([otherPart]));
    }
}

/// <summary>Test traits, for the passes of CI that run a subset.</summary>
public static class Traits
{
    public const string Asserts = "Asserts";

    /// <summary>The test asserts bit- or byte-identical results of libtorch: CI runs these a second time on AVX2 kernels.</summary>
    public const string BitIdentity = "BitIdentity";
}
