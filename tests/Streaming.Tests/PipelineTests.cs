using System.Text.Json.Nodes;
using Streaming.Core;
using Streaming.Engine.Pipelines;
using Xunit;

using Streaming.Core.Compute;

namespace Streaming.Tests;

/// <summary>
/// Pipeline manifests, run with its content-addressed cache, and replay, on the 300-image Fashion-MNIST sample.
/// In the non-parallel collection: libtorch's thread count is process-wide, and a replay is bit-identical only
/// when no other test changes it mid-training.
/// </summary>
[Collection(nameof(ProcessState))]
public class PipelineTests
{
    internal static string MiniManifest(string k = "10") => $"""
        # a tiny pipeline for tests
        name: mini
        seed: 3
        device: cpu
        threads: 2
        data:
          train: {TestPaths.MiniIdxTrain}
          test: {TestPaths.MiniIdxTest}
          labeled_per_class: 5
        teacher:
          arch: cnn-small
          images: 256
          batch: 32
        scoring:
          top_p: 3
          k: {k}
          p: 2
        student:
          arch: cnn-small:w2
          images: 256
          batch: 32
        finetune:
          images: 128
          batch: 32
        baseline:
          images: 128
          batch: 32
        """;

    [Theory]
    [InlineData("scoring", "  k: -5", "scoring.k", "at least 1")]
    [InlineData("scoring", "  kk: 5", "scoring.kk", "unknown key")]
    [InlineData("teacher", "  images: lots", "teacher.images", "whole number")]
    [InlineData("data", "  test: /no/such/file.gz", "data.test", "does not exist")]
    [InlineData("", "colour: red", "colour", "unknown key")]
    [InlineData("scoring", "  balance: sorted", "scoring.balance", "one of ranked")]
    [InlineData("student", "  targets: softest", "student.targets", "one of hard")]
    public void BadManifests_FailBeforeAnyWork_NamingTheKeyAndTheLine(string section, string badLine, string key, string message)
    {
        using var tmp = new TempDir();
        // The bad line replaces the section's own line for that key (or goes after the comment, at the top level).
        var lines = MiniManifest().Split('\n').ToList();
        string badKey = badLine.Trim().Split(':')[0];
        int at;
        if (section.Length == 0)
        {
            at = 1;
            lines.Insert(at, badLine);
        }
        else
        {
            int start = lines.IndexOf(section + ":");
            int existing = lines.FindIndex(start + 1, l => l.StartsWith("  " + badKey + ":", StringComparison.Ordinal) && lines.IndexOf(l) < start + 8);
            if (existing > start && lines.Skip(start + 1).Take(existing - start).All(l => l.StartsWith("  ", StringComparison.Ordinal)))
            {
                lines[existing] = badLine;
                at = existing;
            }
            else
            {
                at = start + 1;
                lines.Insert(at, badLine);
            }
        }
        string path = tmp.Sub("bad.yaml");
        File.WriteAllText(path, string.Join("\n", lines));
        var e = Assert.Throws<StreamingException>(() => PipelineManifest.Load(path));
        Assert.Contains($"bad.yaml:{at + 1}:", e.Message);
        Assert.Contains(key, e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Set_OverridesAKey_AndIsValidatedLikeTheFile()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("p.yaml"), MiniManifest());
        Assert.Equal(7, PipelineManifest.Load(tmp.Sub("p.yaml"), ["scoring.k=7"]).Spec.Scoring.K);
        // A relative path given with --set is relative to the working directory, as a shell user expects.
        string relative = Path.GetRelativePath(Directory.GetCurrentDirectory(), TestPaths.Photos);
        Assert.Equal(Path.GetFullPath(TestPaths.Photos), PipelineManifest.Load(tmp.Sub("p.yaml"), [$"data.distractors={relative}"]).Spec.Distractors);
        var e = Assert.Throws<StreamingException>(() => PipelineManifest.Load(tmp.Sub("p.yaml"), ["scoring.k=-1"]));
        Assert.Contains("--set scoring.k", e.Message);
        Assert.Throws<StreamingException>(() => PipelineManifest.Load(tmp.Sub("p.yaml"), ["scoring.p=4"])); // P above top_p
    }

    [Fact]
    public void Set_OfTeacherModel_ReplacesTheFilesTeacherArch()
    {
        // A second self-training round: the first round's student becomes the teacher with one --set.
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("p.yaml"), MiniManifest());
        File.WriteAllText(tmp.Sub("round1.safetensors"), "");
        var m = PipelineManifest.Load(tmp.Sub("p.yaml"), [$"teacher.model={tmp.Sub("round1.safetensors")}"]);
        Assert.Equal(tmp.Sub("round1.safetensors"), m.Spec.TeacherModel);
        Assert.Null(m.Spec.TeacherArch);
        // Both on the command line is still an error, as both in the file is.
        var e = Assert.Throws<StreamingException>(() => PipelineManifest.Load(tmp.Sub("p.yaml"),
            [$"teacher.model={tmp.Sub("round1.safetensors")}", "teacher.arch=resnet20"]));
        Assert.Contains("exactly one of 'teacher.arch'", e.Message);
    }

    [Fact]
    public void TheShippedManifests_AreValid()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(TestPaths.Root, "pipelines"), "*.yaml"))
        {
            // The data may not be on this machine (ImageNet never is): point the sources at the sample, validate the rest.
            var m = PipelineManifest.Load(file, [$"data.train={TestPaths.MiniIdxTrain}", $"data.test={TestPaths.MiniIdxTest}", $"data.unlabeled={TestPaths.MiniFolder}"]);
            Assert.True(m.Spec.Scoring.K >= 1, file);
        }
        // The paper's setting, as shipped: all of ImageNet in D, U a separate collection, the paper's models, K and P.
        var imagenet = PipelineManifest.Load(Path.Combine(TestPaths.Root, "pipelines", "imagenet-1b.yaml"),
            [$"data.train={TestPaths.MiniIdxTrain}", $"data.test={TestPaths.MiniIdxTest}", $"data.unlabeled={TestPaths.MiniFolder}"]);
        Assert.Equal(("resnext101_32x16d", "resnet50", 16_000, 10, 10, 0), (imagenet.Spec.TeacherArch, imagenet.Spec.StudentArch,
            imagenet.Spec.Scoring.K, imagenet.Spec.Scoring.P, imagenet.Spec.Scoring.TopP, imagenet.Spec.LabeledPerClass));
        // Without its separate U it is refused: all of train in D would leave U empty.
        var e = Assert.Throws<StreamingException>(() => PipelineManifest.Parse(
            File.ReadAllText(Path.Combine(TestPaths.Root, "pipelines", "imagenet-1b.yaml")).Replace("  unlabeled: /data/yfcc100m\n", ""), "imagenet-1b.yaml",
            [$"data.train={TestPaths.MiniIdxTrain}", $"data.test={TestPaths.MiniIdxTest}"]));
        Assert.Contains("data.unlabeled", e.Message);
        Assert.Contains("imagenet-1b.yaml:", e.Message);
    }

    /// <summary>A run record written and read back is the same record, and its resolved manifest binds without going through text.</summary>
    [Fact]
    public void RunRecord_RoundTrips_AndItsManifestBindsTyped()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("mini.yaml"), MiniManifest());
        var m = PipelineManifest.Load(tmp.Sub("mini.yaml"), ["teacher.lr=0.30000000000000004"]);
        var record = new RunRecord
        {
            Manifest = m.Path,
            Resolved = new(m.Values.ToDictionary(kv => kv.Key, kv => System.Text.Json.JsonSerializer.SerializeToElement(kv.Value)), StringComparer.Ordinal),
            Metrics = new(StringComparer.Ordinal) { ["teacher"] = 0.8125 },
            Stages = [new StageEntry("teacher", "k", false, 1.5, "cache/teacher-k", new(StringComparer.Ordinal), new(StringComparer.Ordinal),
                new(StringComparer.Ordinal) { ["model.safetensors"] = new string('a', 64) }, new string('b', 64), new(StringComparer.Ordinal))],
        };
        record.Save(tmp.Sub("run.json"));
        var back = RunRecord.Load(tmp.Sub("run.json"));
        Assert.Equal(record.Metrics, back.Metrics);
        Assert.Equal(record.Stages[0].Outputs, back.Stages[0].Outputs);
        Assert.Equal(tmp.Sub("run/cache/teacher-k"), back.StageFolder(tmp.Sub("run"), "teacher"));
        var (replayed, _) = PipelineReplay.LoadRecord(tmp.Sub("run.json"));
        Assert.Equal(m.Spec with { }, replayed.Spec with { }); // every typed setting, the lr's last bit included
        Assert.Equal(0.30000000000000004, replayed.Spec.Teacher!.Lr);
        var (overridden, _) = PipelineReplay.LoadRecord(tmp.Sub("run.json"), ["compute.isa=avx2"]);
        Assert.Equal(Streaming.Core.Compute.KernelIsa.Avx2, overridden.Spec.Scoring.Compute.Isa);

        var text = File.ReadAllText(tmp.Sub("run.json")).Replace("\"scoring.k\": 10", "\"scoring.k\": \"ten\"");
        File.WriteAllText(tmp.Sub("bad.json"), text);
        var e = Assert.Throws<StreamingException>(() => PipelineReplay.LoadRecord(tmp.Sub("bad.json")));
        Assert.Contains("resolved 'scoring.k'", e.Message);
    }

    [Fact]
    public async Task Run_WithASeparateUnlabeledCollection_PutsAllOfTrainInD_AndScoresTheCollection()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("mini.yaml"), MiniManifest().Replace("  labeled_per_class: 5", $"  labeled_per_class: 0\n  unlabeled: {TestPaths.MiniFolder}"));
        var run = await new PipelineRunner(PipelineManifest.Load(tmp.Sub("mini.yaml")), tmp.Sub("run"), _ => { }).RunAsync();
        Assert.Equal(300, run.Metrics["labeled"]);
        Assert.Equal(200, run.Metrics["unlabeled"]);
        Assert.Equal(200, run.Metrics["images_scored"]);
        var pairs = await Streaming.Core.Selection.SelectionImages.ReadPairsAsync(run.StageFolder(tmp.Sub("run"), "select"));
        Assert.NotEmpty(pairs);
        Assert.All(pairs, p => Assert.StartsWith("unlabeled/", p.Id));
        // How many of the collection's images reached D-hat (here all of D-hat: U is the collection alone).
        Assert.Equal(pairs.Count, run.Metrics["dhat_unlabeled_source_rows"]);
        Assert.Equal(1.0, run.Metrics["dhat_unlabeled_source_share"]);
    }

    /// <summary>
    /// data.dedup_against: test adds a dedup stage after split: U loses the images within the thresholds of a test image
    /// (loose ones here, so that the 250-image sample has some), scoring never sees them, and run.json counts them.
    /// </summary>
    [Fact]
    public async Task Run_WithDedupAgainstTest_RemovesTheDuplicatesFromU_BeforeScoring()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("mini.yaml"), MiniManifest().Replace("  labeled_per_class: 5", "  labeled_per_class: 5\n  dedup_against: test\n  dedup_max_hamming: 60\n  dedup_max_cell_rms: 40"));
        var runner = new PipelineRunner(PipelineManifest.Load(tmp.Sub("mini.yaml")), tmp.Sub("run"), _ => { });
        Assert.Equal("dedup", runner.Stages[3].Name);
        var run = await runner.RunAsync();
        double removed = run.Metrics["dedup_removed"];
        Assert.InRange(removed, 1, 249);
        Assert.Equal(250 - removed, run.Metrics["images_scored"]);
        var pairs = await Streaming.Engine.Dedup.Deduplicator.ReadPairsAsync(Path.Combine(run.StageFolder(tmp.Sub("run"), "dedup"), "duplicates.parquet"));
        Assert.Equal(removed, pairs.Count);
        Assert.All(pairs, p => Assert.True(p.Kind != "perceptual" || p.Distance <= 40));
        var scored = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in Directory.GetFiles(Path.Combine(run.StageFolder(tmp.Sub("run"), "score"), "scores"), "*.parquet"))
            await foreach (var row in Streaming.Core.Selection.ScoreShards.ReadAsync(f)) scored.Add(row.Id);
        Assert.Equal(250 - (int)removed, scored.Count);
        Assert.DoesNotContain(pairs, p => scored.Contains(p.Id));
        Assert.Contains(run.Stages, st => st.Name == "dedup" && st.Inputs.ContainsKey("ingest-test"));
        Assert.Contains(run.Stages, st => st.Name == "score" && st.Inputs.ContainsKey("dedup"));
    }

    /// <summary>
    /// weak.tags: noise runs the semi-weakly supervised setting: W (U with the tag-noise model's tags) pre-trains the
    /// teacher, which is then fine-tuned on D; the weakly supervised baseline and the balanced-with-tags student are
    /// trained and fine-tuned, and the equal-budget control gets the student's whole budget. Every row lands in run.json,
    /// and a second run reuses every stage.
    /// </summary>
    [Fact]
    public async Task Run_SemiWeak_PretrainsTheTeacherOnTags_AndReportsEveryRow()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("mini.yaml"), MiniManifest()
            .Replace("teacher:\n", "weak:\n  tags: noise\n  images: 128\n  batch: 32\nteacher:\n")
            .Replace("baseline:\n", "baseline:\n  equal_budget: true\n"));
        var manifest = PipelineManifest.Load(tmp.Sub("mini.yaml"));
        var runner = new PipelineRunner(manifest, tmp.Sub("run"), _ => { });
        Assert.Equal(["ingest-train", "ingest-test", "split", "baseline", "control", "tags", "teacher-weak", "teacher", "score", "select", "dhat-images",
            "student", "finetune", "weak-student", "weak-finetune", "tags-select", "tags-images", "tags-student", "tags-finetune"], runner.Stages.Select(st => st.Name));
        var run = await runner.RunAsync();
        Assert.Equal(runner.Stages.Select(st => st.Name), run.Stages.Select(st => st.Name));
        foreach (var metric in new[] { "baseline", "control", "teacher_weak", "teacher", "student_finetuned", "weak_pretrained", "weak_finetuned", "tags_pretrained", "tags_finetuned" })
            Assert.InRange(run.Metrics[metric], 0.0, 1.0);
        Assert.InRange(run.Metrics["tag_precision"], 0.2, 1.0);
        Assert.InRange(run.Metrics["tagged_images"], 50, 249);

        // The teacher starts from the weakly pre-trained model; the control's budget is the student's pre-training plus fine-tuning.
        var teacher = run.Stage("teacher");
        Assert.Equal("the teacher-weak stage's model", teacher.Parameters["init"].GetString());
        Assert.Equal(run.Stage("teacher-weak").OutputSha256, teacher.Inputs["teacher-weak"]);
        Assert.Equal(256 + 128, run.Stage("control").Parameters["images"].GetInt64());
        Assert.Equal("weak: the tags stage's tags, each 1/count", run.Stage("weak-student").Parameters["targets"].GetString());

        // W holds exactly the tagged images, and balanced-with-tags only picks an image for a class it is tagged with, at most K a class.
        string tags = run.StageFolder(tmp.Sub("run"), "tags");
        var w = Streaming.Core.Datasets.DatasetManifest.Load(Path.Combine(tags, "w"));
        Assert.Equal((long)run.Metrics["tagged_images"], w.Shards.Sum(sh => sh.Rows));
        var tagged = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var f in Directory.GetFiles(Path.Combine(tags, "tags", "scores"), "*.parquet"))
            await foreach (var row in Streaming.Core.Selection.ScoreShards.ReadAsync(f)) tagged[row.Id] = row.Classes;
        Assert.Equal(tagged.Count, (int)run.Metrics["tagged_images"]);
        var pairs = await Streaming.Core.Selection.SelectionImages.ReadPairsAsync(run.StageFolder(tmp.Sub("run"), "tags-select"));
        Assert.NotEmpty(pairs);
        Assert.All(pairs, p => Assert.Contains(p.Class, tagged[p.Id]));
        Assert.All(pairs.GroupBy(p => p.Class), g => Assert.InRange(g.Count(), 1, 10));
        Assert.InRange(run.Metrics["tags_dhat_precision"], 0.0, 1.0);

        var again = await new PipelineRunner(manifest, tmp.Sub("run"), _ => { }).RunAsync();
        Assert.All(again.Stages, st => Assert.True(st.Reused, st.Name));
        Assert.Equal(run.Metrics["tags_finetuned"], again.Metrics["tags_finetuned"]);

        // A teacher that is imported cannot be pre-trained on tags.
        File.WriteAllText(tmp.Sub("bad.yaml"), File.ReadAllText(tmp.Sub("mini.yaml")).Replace("  arch: cnn-small\n  images: 256", $"  model: {tmp.Sub("mini.yaml")}\n  images: 256"));
        var e = Assert.Throws<StreamingException>(() => PipelineManifest.Load(tmp.Sub("bad.yaml")));
        Assert.Contains("weak.tags", e.Message);
    }

    /// <summary>
    /// weak.tags: column takes W's tags from U's own tags column: here train is a list file whose third field tags two
    /// thirds of the images (with their class, and every fifth also with a wrong one), and the tags travel through split.
    /// </summary>
    [Fact]
    public async Task Run_SemiWeak_FromATagsColumn_UsesUsOwnTags()
    {
        using var tmp = new TempDir();
        await Streaming.Core.Ingest.Ingestor.RunAsync(Streaming.Core.Ingest.ImageSource.Open(TestPaths.MiniIdxTrain), tmp.Sub("train"));
        Directory.CreateDirectory(tmp.Sub("img"));
        var lines = new List<string>();
        int i = 0;
        foreach (var r in await IngestTests.ReadAll(tmp.Sub("train")))
        {
            File.WriteAllBytes(Path.Combine(tmp.Sub("img"), $"{i}.png"), r.Image);
            int y = r.Label!.Value;
            string tags = i % 3 == 0 ? "" : i % 5 == 0 ? $"{y},{(y + 1) % 10}" : $"{y}";
            lines.Add($"img/{i}.png\t{y}\t{tags}");
            i++;
        }
        File.WriteAllLines(tmp.Sub("train.txt"), lines);
        File.WriteAllText(tmp.Sub("mini.yaml"), MiniManifest()
            .Replace($"  train: {TestPaths.MiniIdxTrain}", $"  train: {tmp.Sub("train.txt")}")
            .Replace("teacher:\n", "weak:\n  tags: column\n  images: 128\n  batch: 32\nteacher:\n"));
        var run = await new PipelineRunner(PipelineManifest.Load(tmp.Sub("mini.yaml")), tmp.Sub("run"), _ => { }).RunAsync();
        var tagsStage = run.Stage("tags");
        Assert.Equal("the tags column of U", tagsStage.Parameters["source"].GetString());
        Assert.DoesNotContain("baseline", tagsStage.Inputs.Keys);
        // U (250 images) keeps the tags column; W is its images with at least one tag.
        var u = await IngestTests.ReadAll(Path.Combine(run.StageFolder(tmp.Sub("run"), "split"), "u"));
        Assert.Equal(250, u.Count);
        Assert.All(u, r => Assert.NotNull(r.Tags));
        int tagged = u.Count(r => r.Tags!.Length > 0);
        Assert.InRange(tagged, 150, 180);
        Assert.Equal(tagged, run.Metrics["tagged_images"]);
        // Every tagged image has its true class among its tags, so recall is the tagged share, and precision is below 1.
        Assert.Equal(Math.Round(tagged / 250.0, 4), run.Metrics["tag_recall"], 4);
        Assert.InRange(run.Metrics["tag_precision"], 0.8, 0.99);
        Assert.InRange(run.Metrics["weak_finetuned"], 0.0, 1.0);
    }

    [Fact]
    public async Task Run_CachesStages_AndChangingKRerunsOnlySelectAndAfter()
    {
        Prerequisite.Mpirun.Require(); // its last run trains the student on 2 ranks
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("mini.yaml"), MiniManifest());
        var log = new List<string>();
        var first = await new PipelineRunner(PipelineManifest.Load(tmp.Sub("mini.yaml")), tmp.Sub("run"), log.Add).RunAsync();
        var metrics = first.Metrics;
        foreach (var name in new[] { "baseline", "teacher", "student_pretrained", "student_finetuned", "pseudo_label_precision" })
            Assert.InRange(metrics[name], 0, 1);
        Assert.All(first.Stages, s => Assert.False(s.Reused));

        // The same manifest again: everything reused. K changed: select, D-hat images, student and fine-tune rerun.
        var again = await new PipelineRunner(PipelineManifest.Load(tmp.Sub("mini.yaml")), tmp.Sub("run"), log.Add).RunAsync();
        Assert.All(again.Stages, s => Assert.True(s.Reused));
        log.Clear();
        var changed = await new PipelineRunner(PipelineManifest.Load(tmp.Sub("mini.yaml"), ["scoring.k=6"]), tmp.Sub("run"), log.Add).RunAsync();
        var reran = changed.Stages.Where(s => !s.Reused).Select(s => s.Name).ToArray();
        Assert.Equal(new[] { "select", "dhat-images", "student", "finetune" }, reran);
        Assert.Contains(log, l => l.Contains("score: reused", StringComparison.Ordinal));
        // At most K = 6 a class now (a weak teacher leaves some classes short), fewer than with K = 10.
        double rows6 = changed.Metrics["dhat_rows"], rows10 = metrics["dhat_rows"];
        Assert.InRange(rows6, 1, 60);
        Assert.True(rows6 < rows10, $"{rows6} rows at K = 6, {rows10} at K = 10");

        // The student on 2 ranks (under mpirun): its key names N, so it and what follows rerun; run.json records the world.
        var ranked = await new PipelineRunner(PipelineManifest.Load(tmp.Sub("mini.yaml"), ["student.ranks=2"]), tmp.Sub("run"), log.Add).RunAsync();
        Assert.Equal(new[] { "student", "finetune" }, ranked.Stages.Where(s => !s.Reused).Select(s => s.Name).ToArray());
        Assert.Equal(2, ranked.Stages.Single(s => s.Name == "student").Parameters["ranks"].GetInt32());
        Assert.False(ranked.Stages.Single(s => s.Name == "finetune").Parameters.ContainsKey("ranks"));
        var world = Assert.Single(ranked.World!);
        Assert.Equal(("student", 2, 16, "per rank"), (world.Key, world.Value.Ranks, world.Value.BatchPerRank, world.Value.BatchNorm));
        Assert.InRange(ranked.Metrics["student_pretrained"], 0, 1);
    }

    /// <summary>
    /// The real command in child processes: a test process trains in parallel threads that share libtorch's
    /// global state (thread count, generator), so bit-identity is checked where a user meets it, one run a process.
    /// </summary>
    [Trait(Traits.Asserts, Traits.BitIdentity)]
    [Fact]
    public async Task Replay_OfARun_MatchesEveryHash_AndATamperedRecordNamesTheStageAndFile()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("mini.yaml"), MiniManifest());
        // --json: the record on stdout (as jq reads it), the table on stderr.
        var (code, stdout, stderr) = await CliProcess.RunSplitAsync("run", tmp.Sub("mini.yaml"), "--out", tmp.Sub("run"), "--json");
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("student, fine-tuned on D", stderr);
        await JsonCheck.Jq(stdout, "(.stages | length) >= 5 and (.metrics.student_finetuned >= 0)");
        Assert.Equal(File.ReadAllText(tmp.Sub("run/run.json")), stdout);
        string output;
        (code, output) = await CliProcess.RunAsync("replay", tmp.Sub("run/run.json"), "--out", tmp.Sub("replay"));
        Assert.True(code == 0, output);
        Assert.Contains("replay matches", output);
        foreach (var stage in PipelineGraph.NamesOf(PipelineManifest.Load(tmp.Sub("mini.yaml")).Spec)) Assert.Contains(stage, output);

        var record = JsonNode.Parse(File.ReadAllText(tmp.Sub("run/run.json")))!.AsObject();
        var select = record["stages"]!.AsArray().First(s => s!["name"]!.ToString() == "select")!;
        select["outputs"]!["dhat.parquet"] = new string('0', 64);
        File.WriteAllText(tmp.Sub("tampered.json"), record.ToJsonString());
        (code, output) = await CliProcess.RunAsync("replay", tmp.Sub("tampered.json"), "--out", tmp.Sub("replay2"));
        Assert.Equal(5, code);
        Assert.Contains("stage select, dhat.parquet", output);
    }

    /// <summary>
    /// A run pinned to AVX2 records its kernels and replays byte for byte on this machine (whatever its own ISA). A record
    /// whose kernels this CPU lacks is refused in one line before any work, unless --allow-isa-change, which compares
    /// the metrics within tolerance instead.
    /// </summary>
    [Trait(Traits.Asserts, Traits.BitIdentity)]
    [Fact]
    public async Task Replay_OfAnAvx2Run_MatchesEveryHash_AndOtherKernelsAreRefusedOrComparedByTolerance()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("mini.yaml"), MiniManifest());
        var (code, output) = await CliProcess.RunAsync("run", tmp.Sub("mini.yaml"), "--out", tmp.Sub("run"), "--isa", "avx2");
        Assert.True(code == 0, output);
        var record = JsonNode.Parse(File.ReadAllText(tmp.Sub("run/run.json")))!.AsObject();
        Assert.Equal("avx2", record["resolved"]!["compute.isa"]!.ToString());
        Assert.Equal("avx2", record["compute"]!["isa"]!.ToString());
        Assert.Equal("avx2", record["compute"]!["onednn_isa"]!.ToString());
        Assert.Equal("avx2", record["compute"]!["aten_cpu_capability"]!.ToString());
        (code, output) = await CliProcess.RunAsync("replay", tmp.Sub("run/run.json"), "--out", tmp.Sub("replay"));
        Assert.True(code == 0, output);
        Assert.Contains("replay matches", output);
        Assert.Contains("isa avx2", output);

        // As if made on a CPU with more than this one has.
        var best = Streaming.Core.Compute.CpuInfo.Current.BestIsa;
        var above = Enum.GetValues<Streaming.Core.Compute.KernelIsa>().Where(i => i > best).Select(Streaming.Core.Compute.KernelIsas.Name).FirstOrDefault() ?? "avx10_2";
        record["compute"]!["onednn_isa"] = above;
        File.WriteAllText(tmp.Sub("elsewhere.json"), record.ToJsonString());
        (code, output) = await CliProcess.RunAsync("replay", tmp.Sub("elsewhere.json"), "--out", tmp.Sub("replay2"));
        Assert.True(code == 3, output);
        Assert.Contains("--allow-isa-change", output);
        Assert.False(Directory.Exists(tmp.Sub("replay2/cache")), "the refusal came after work had started");
        (code, output) = await CliProcess.RunAsync("replay", tmp.Sub("elsewhere.json"), "--out", tmp.Sub("replay3"), "--allow-isa-change");
        Assert.True(code == 0, output);
        Assert.Contains("replay on other kernels agrees", output);
        Assert.Contains("student_finetuned", output);
    }

    [Fact]
    public async Task Train_OnASelectionFolder_CopiesDhatOutOfU_OnceAndLabeledByClass()
    {
        using var tmp = new TempDir();
        await Streaming.Core.Ingest.Ingestor.RunAsync(Streaming.Core.Ingest.ImageSource.Open(TestPaths.MiniIdxTest), tmp.Sub("u"));
        var scored = await Streaming.Engine.Scoring.ScoreEngine.RunAsync(new Streaming.Engine.Scoring.ScoreOptions
        {
            Teacher = TestPaths.Fixture("teacher-cnn.onnx"), Data = tmp.Sub("u"), Out = tmp.Sub("scores"),
            Scoring = new Streaming.Core.Scoring.ScoringSpec { TopP = 3, K = 4, P = 2, Compute = new Streaming.Core.Options.ComputeSpec { Threads = 2 } },
        });
        var selection = scored.Selection!;
        string dhat = tmp.Sub("scores/selection");
        var log = new List<string>();
        var options = new Streaming.Models.Training.TrainOptions
        {
            Data = dhat, Arch = "cnn-small", Out = tmp.Sub("student"), Images = 32, BatchSize = 16, Threads = 2, Device = "cpu",
        };
        var result = await Streaming.Models.Training.Trainer.RunAsync(options, null, log.Add);
        Assert.True(File.Exists(result.ModelPath));
        var images = Streaming.Core.Datasets.DatasetManifest.Load(Path.Combine(dhat, "images"));
        Assert.Equal(selection.Selected, images.Rows);
        Assert.Equal(selection.Counts.Select(c => (long)c), images.ClassCounts.Concat(Enumerable.Repeat(0L, 10)).Take(selection.Counts.Count));
        Assert.Contains(log, l => l.Contains("copying", StringComparison.Ordinal));
        log.Clear();
        await Streaming.Models.Training.Trainer.RunAsync(options with { Overwrite = true }, null, log.Add);
        Assert.DoesNotContain(log, l => l.Contains("copying", StringComparison.Ordinal));
    }
}
