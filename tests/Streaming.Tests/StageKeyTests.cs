using System.Text.Json;
using Streaming.Engine.Pipelines;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// Every stage's cache key, pinned: a key names the stage's cache folder and is recorded in run.json, so a key that drifts
/// orphans every cache and makes every recorded run replay differently. The expected keys were computed by the runner as it
/// was before the stages were declared as a graph (its keying code, given the same fixed hashes), and the default pipeline's
/// are also those of its committed record (docs/runs). Keys are computed as the runner computes them, without running anything.
/// </summary>
public class StageKeyTests
{
    private const string DefaultRecord = "default-pipeline-2026-11-29";

    /// <summary>
    /// The keys the runner gave before the stage graph, for <see cref="StageKeyScenarios"/> with <see cref="FakeContext"/>;
    /// the dedup stage's changed on purpose when its detector checked the dHash's candidates by their cells (issue 32: its
    /// output is no longer the same for the same parameters).
    /// </summary>
    public static readonly TheoryData<string, string> Pinned = new()
    {
        { "plain", "ingest-train=70b93c48ce1d067d ingest-test=c1d9ba3846497814 split=d182b713d942e9ab baseline=a6938bc8b7d62634 teacher=c257d1b85f9284d8 score=44dcd9ff2edb34cf select=4b9a245ec23f40fd dhat-images=ac799e14528e36ab student=21791eae3101c391 finetune=384513de05a32658" },
        { "everything", "ingest-train=70b93c48ce1d067d ingest-test=c1d9ba3846497814 split=0e6820a32f5f305a dedup=33912792e440101d baseline=a6938bc8b7d62634 control=aced30a74b625635 teacher=c257d1b85f9284d8 score=d68023cebb605adc select=2fe98538fd011337 dhat-images=c4b84c4e6aa840e7 student=31de8390b4717d62 finetune=384513de05a32658" },
        { "semi-weak-noise", "ingest-train=70b93c48ce1d067d ingest-test=c1d9ba3846497814 split=d182b713d942e9ab dedup=df10100d957e6b83 baseline=a6938bc8b7d62634 control=aced30a74b625635 tags=ef7135c33d0e9136 teacher-weak=16d6589a49712300 teacher=d2c8b8e0b2fec3b6 score=d68023cebb605adc select=4b9a245ec23f40fd dhat-images=c4b84c4e6aa840e7 student=21791eae3101c391 finetune=384513de05a32658 weak-student=8d1735910160a354 weak-finetune=22c5ee2276650310 tags-select=1aebeea67929c0ce tags-images=2bcfed6cfaf5d24e tags-student=57a2397e4c322214 tags-finetune=dd76fb13d8d9659e" },
        { "semi-weak-column", "ingest-train=70b93c48ce1d067d ingest-test=c1d9ba3846497814 split=d182b713d942e9ab baseline=a6938bc8b7d62634 tags=1e9665542b53abc5 teacher-weak=16d6589a49712300 teacher=d2c8b8e0b2fec3b6 score=44dcd9ff2edb34cf select=4b9a245ec23f40fd dhat-images=ac799e14528e36ab student=31de8390b4717d62 finetune=384513de05a32658 weak-student=8d1735910160a354 weak-finetune=22c5ee2276650310 tags-select=1aebeea67929c0ce tags-images=5bb4e4d9f9d5a1b3 tags-student=57a2397e4c322214 tags-finetune=dd76fb13d8d9659e" },
        { "imported", "ingest-train=70b93c48ce1d067d ingest-test=c1d9ba3846497814 split=d182b713d942e9ab baseline=a6938bc8b7d62634 teacher=60f4d38aebaecd06 score=44dcd9ff2edb34cf select=4b9a245ec23f40fd dhat-images=ac799e14528e36ab student=21791eae3101c391 finetune=384513de05a32658" },
        { "imported-onnx", "ingest-train=70b93c48ce1d067d ingest-test=c1d9ba3846497814 split=d182b713d942e9ab dedup=df10100d957e6b83 baseline=a6938bc8b7d62634 teacher=c634d76aeecf35bf score=d68023cebb605adc select=4b9a245ec23f40fd dhat-images=c4b84c4e6aa840e7 student=21791eae3101c391 finetune=384513de05a32658" },
    };

    [Theory]
    [MemberData(nameof(Pinned))]
    public void StageKeys_OfEachKindOfPipeline_AreTheOnesTheRunnerGaveBeforeTheGraph(string scenario, string expected)
    {
        var spec = StageKeyScenarios.All[scenario];
        Assert.Equal(expected, Keys(spec, FakeContext(spec), stage => StageKeyScenarios.Fake("output " + stage)));
    }

    /// <summary>
    /// The default pipeline (pipelines/fashion-mnist.yaml) as recorded on 2026-11-29: with its record's source hashes, kernels
    /// and output hashes, every stage gets the key and the parameters the record holds, so its cache is reused and it replays.
    /// </summary>
    [Fact]
    public void StageKeys_OfTheRecordedDefaultPipeline_AreItsRecordsKeys()
    {
        string path = Path.Combine(TestPaths.Root, "docs", "runs", DefaultRecord, "avx2", "run.json");
        var record = RunRecord.Load(path);
        // The record's sources need not be on this machine: bind it with the sample's, then put its own paths back.
        var resolved = new SortedDictionary<string, JsonElement>(record.Resolved, StringComparer.Ordinal)
        {
            ["data.train"] = JsonSerializer.SerializeToElement(TestPaths.MiniIdxTrain),
            ["data.test"] = JsonSerializer.SerializeToElement(TestPaths.MiniIdxTest),
        };
        var spec = PipelineManifest.FromRecord(record with { Resolved = resolved }, path).Spec with { Train = record.Text("data.train")!, Test = record.Text("data.test")! };
        var sources = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"] = "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            ["/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"] = "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        };
        var context = new KeyContext(spec, Streaming.Models.Compute.Kernels.KernelKey(record.Compute!), p => sources[p], _ => throw new InvalidOperationException());
        Assert.Equal(StageKeyScenarios.Kernels, context.Kernels);

        string keys = Keys(spec, context, stage => record.Stage(stage).OutputSha256);
        Assert.Equal("ingest-train=b857dbc0f2cabb13 ingest-test=924ec94b687a42f5 split=b076dbc8d4cf541c baseline=332800edd9c3d3cf teacher=395c511fe3b65c78 "
            + "score=45d65f60c577035a select=369b09e81b21449b dhat-images=c24c3a839382408e student=8730e62da8b159e8 finetune=79cbbb7b7cd83487", keys);
        Assert.Equal(string.Join(" ", record.Stages.Select(s => $"{s.Name}={s.Key}")), keys);
        foreach (var stage in PipelineGraph.StagesOf(spec))
        {
            var recorded = record.Stage(stage.Name);
            Assert.Equal(recorded.Parameters.ToDictionary(kv => kv.Key, kv => kv.Value.GetRawText()),
                stage.Parameters(context).ToDictionary(kv => kv.Key, kv => JsonSerializer.SerializeToElement(kv.Value).GetRawText()));
            Assert.Equal(recorded.Inputs.Keys, stage.Inputs(spec).Select(s => s.Name).Order(StringComparer.Ordinal));
        }
    }

    /// <summary>The key shape itself: a stage's JSON identity, hashed. A change here would move every key.</summary>
    [Fact]
    public void StageKey_IsTheHashOfTheStagesJsonIdentity()
    {
        var parameters = KeyContext.Of(("k", 10), ("seed", 3UL), ("lr", 0.1), ("balance", "ranked"));
        var inputs = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["score"] = "ab", ["split"] = "cd" };
        const string identity = """{"stage":"select","version":1,"parameters":{"balance":"ranked","k":10,"lr":0.1,"seed":3},"inputs":{"score":"ab","split":"cd"}}""";
        Assert.Equal(StageKeyScenarios.Fake(identity)[..16], StageKey.Of("select", parameters, inputs));
    }

    /// <summary>Made-up hashes for <see cref="StageKeyScenarios"/>: of a source, a file, by their paths.</summary>
    private static KeyContext FakeContext(PipelineSpec spec) =>
        new(spec, StageKeyScenarios.Kernels, p => StageKeyScenarios.Fake("source " + p), p => StageKeyScenarios.Fake("file " + p));

    /// <summary>"name=key ..." for the stages of <paramref name="spec"/>, keyed as <c>StageCache</c> keys them.</summary>
    private static string Keys(PipelineSpec spec, KeyContext context, Func<string, string> outputOf) =>
        string.Join(" ", PipelineGraph.StagesOf(spec).Select(stage =>
            $"{stage.Name}={StageKey.Of(stage.Name, stage.Parameters(context), StageKey.Inputs(stage, spec, s => outputOf(s.Name)))}"));
}
