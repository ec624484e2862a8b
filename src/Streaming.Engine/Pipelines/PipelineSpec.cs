using Streaming.Core.Compute;
using Streaming.Core.Options;
using Streaming.Core.Scoring;
using Streaming.Core.Selection;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// One training job of a pipeline: its budget in images, batch, base learning rate (at batch 256), schedule, and the
/// processes that train it data-parallel (<see cref="Ranks"/>).
/// </summary>
public sealed record TrainingSection(long Images, int Batch, double Lr, string Schedule, int Ranks = 1)
{
    /// <summary>Trained by the <c>train</c> command's recipe (<c>TrainRecipe</c>) instead of this section's budget, rate and schedule.</summary>
    public bool Recipe { get; init; }
}

/// <summary>
/// A pipeline manifest as typed settings: what the runner, replay and profile read. <see cref="From"/> is the one place
/// the manifest's keys are read; everything else reads properties.
/// </summary>
public sealed record PipelineSpec
{
    public required string Name { get; init; }
    public int Seed { get; init; }
    public int IngestWorkers { get; init; }
    /// <summary>mpirun's host list for the stages trained on more than one rank (<c>compute.hosts</c>); empty: this machine.</summary>
    public string Hosts { get; init; } = "";
    public int EvalBatch { get; init; }
    public int EvalWorkers { get; init; }

    public required string Train { get; init; }
    public required string Test { get; init; }
    public int LabeledPerClass { get; init; }
    public string? Unlabeled { get; init; }
    public string? Distractors { get; init; }
    public int DistractorCount { get; init; }
    /// <summary>Remove from U the duplicates of the test set before scoring (<c>data.dedup_against: test</c>).</summary>
    public bool DedupAgainstTest { get; init; }
    public int DedupMaxHamming { get; init; }
    public double DedupMaxCellRms { get; init; }

    /// <summary>The teacher's architecture, trained on D; or null, and <see cref="TeacherModel"/> imported.</summary>
    public string? TeacherArch { get; init; }
    public string? TeacherModel { get; init; }
    /// <summary>The teacher's training (null for an imported teacher).</summary>
    public TrainingSection? Teacher { get; init; }

    /// <summary>
    /// The scoring's and compute's knobs, as one typed spec (<c>scoring.*</c>, <c>threads</c>, <c>device</c>,
    /// <c>compute.*</c>): the score stage scores with it (without K: selection is its own stage), and its threads are
    /// resolved (never 0), as run records keep the count a run used. The pipeline always has K.
    /// </summary>
    public ScoringSpec Scoring { get; init; } = new();

    public required string StudentArch { get; init; }
    public required TrainingSection Student { get; init; }
    /// <summary>Pre-train the student on the teacher's top-P' probabilities instead of hard pseudo-labels.</summary>
    public bool SoftTargets { get; init; }
    public required TrainingSection Finetune { get; init; }
    public required TrainingSection Baseline { get; init; }
    /// <summary>Also train the equal-budget control: the baseline given the student's whole budget (stage <c>control</c>).</summary>
    public bool EqualBudgetControl { get; init; }
    /// <summary>The semi-weakly supervised setting (<c>weak.tags: noise</c> or <c>column</c>): W, its tags, and the rows that use them.</summary>
    public bool WeakTags => WeakTagsFrom != "none";
    /// <summary>Where W's tags come from: <c>none</c>, <c>noise</c> (the tag-noise model) or <c>column</c> (U's tags column).</summary>
    public string WeakTagsFrom { get; init; } = "none";
    /// <summary>Pre-training on W's tags (the teacher's and the weakly supervised baseline's).</summary>
    public required TrainingSection Weak { get; init; }

    /// <summary>The equal-budget control's training: the baseline's schedule over the student's pre-training plus fine-tuning budget.</summary>
    public TrainingSection Control => Baseline with { Images = Student.Images + Finetune.Images };

    /// <summary>Binds a validated manifest's values (every key, defaults filled in).</summary>
    internal static PipelineSpec From(IReadOnlyDictionary<string, object> v)
    {
        T Get<T>(string key) => (T)v[key];
        T? Maybe<T>(string key) where T : class => v.TryGetValue(key, out var x) ? (T)x : null;
        TrainingSection Training(string section) =>
            new(Get<long>(section + ".images"), Get<int>(section + ".batch"), Get<double>(section + ".lr"), Get<string>(section + ".schedule"),
                v.TryGetValue(section + ".ranks", out var ranks) ? (int)ranks : 1);
        string? teacherArch = Maybe<string>("teacher.arch");
        return new PipelineSpec
        {
            Name = Get<string>("name"),
            Seed = Get<int>("seed"),
            IngestWorkers = Knobs.ResolveWorkers(Get<int>(Knobs.IngestWorkers.Key)),
            Hosts = Get<string>("compute.hosts"),
            EvalBatch = Get<int>(Knobs.EvalBatch.Key),
            EvalWorkers = Get<int>(Knobs.EvalWorkers.Key),
            Train = Get<string>("data.train"),
            Test = Get<string>("data.test"),
            LabeledPerClass = Get<int>("data.labeled_per_class"),
            Unlabeled = Maybe<string>("data.unlabeled"),
            Distractors = Maybe<string>("data.distractors"),
            DistractorCount = Get<int>("data.distractor_count"),
            DedupAgainstTest = Get<string>("data.dedup_against") == "test",
            DedupMaxHamming = Get<int>("data.dedup_max_hamming"),
            DedupMaxCellRms = Get<double>("data.dedup_max_cell_rms"),
            Scoring = ScoringSpec.From(v) with { Seed = (ulong)Get<int>("seed") },
            TeacherArch = teacherArch,
            TeacherModel = Maybe<string>("teacher.model"),
            Teacher = teacherArch is null ? null : Training("teacher") with { Recipe = v.TryGetValue("teacher.recipe", out var recipe) && (bool)recipe },
            StudentArch = Get<string>("student.arch"),
            Student = Training("student"),
            SoftTargets = Get<string>("student.targets") == "soft",
            Finetune = Training("finetune"),
            Baseline = Training("baseline"),
            EqualBudgetControl = Get<bool>("baseline.equal_budget"),
            WeakTagsFrom = Get<string>("weak.tags"),
            Weak = Training("weak"),
        };
    }
}
