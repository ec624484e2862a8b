using System.Text.Json;
using Streaming.Core;
using static TorchSharp.torch;

namespace Streaming.Models.Training;

/// <summary>
/// Where a run starts: the newest complete checkpoint of its folder on <c>--resume</c> (made with the same settings,
/// or the run stops), else the beginning.
/// </summary>
internal sealed class ResumePoint
{
    private ResumePoint(string? checkpoint, CheckpointState? state)
    {
        Checkpoint = checkpoint;
        State = state;
        Step = state?.Step ?? 0;
    }

    /// <summary>The checkpoint folder the run continues from, or null.</summary>
    public string? Checkpoint { get; }

    /// <summary>What the checkpoint says about the run at that point, or null.</summary>
    public CheckpointState? State { get; }

    /// <summary>The number of steps already taken.</summary>
    public long Step { get; private init; }

    /// <summary>The beginning of a run (what a rank other than 0 starts from before it learns rank 0's step).</summary>
    public static ResumePoint Start { get; } = new(null, null);

    /// <summary>This point at <paramref name="step"/>: rank 0's step, on a rank that holds no checkpoint of its own (its state comes by broadcast).</summary>
    public ResumePoint At(long step) => step == Step ? this : new ResumePoint(Checkpoint, State) { Step = step };

    /// <summary>
    /// The checkpoint that <paramref name="o"/> resumes from, checked against the settings of the run that made it;
    /// logs what would make the rest of the run differ from an uninterrupted one.
    /// </summary>
    public static ResumePoint Find(TrainOptions o, Action<string> log)
    {
        string? checkpoint = o.Resume ? Checkpoints.Latest(o.Out) : null;
        CheckpointState? state = checkpoint is null ? null : Checkpoints.ReadState(checkpoint);
        if (state is not null)
        {
            var saved = state.Config.Deserialize<TrainOptions>()!;
            if (Identity(saved) != Identity(o))
                throw new StreamingException($"{checkpoint}: was made with other settings ({Identity(saved)}); resume with the same options, or --overwrite to start again");
            if (DistributedRun.Ranks(saved) != DistributedRun.Ranks(o))
                log($"note: the checkpoint was made with {DistributedRun.Ranks(saved)} ranks, this run uses {DistributedRun.Ranks(o)} (BatchNorm statistics are per rank, over B/N images): results stay close but are not identical to an uninterrupted run");
            else if (state.Threads != o.Threads) log($"note: the checkpoint was made with {state.Threads} threads, this run uses {o.Threads}: results stay close but are no longer bit-identical to an uninterrupted run");
            else if (saved.Compute is { } before && before.KernelDifferences(o.Compute!) is { Count: > 0 } differences)
                log($"note: the checkpoint was made with other kernels ({string.Join("; ", differences)}): results stay close but are no longer bit-identical to an uninterrupted run");
        }
        else if (o.Resume)
        {
            log($"no checkpoint in {Checkpoints.Folder(o.Out)}; starting from the beginning");
        }
        return new ResumePoint(checkpoint, state);
    }

    /// <summary>Loads the checkpoint's weights and momentum into the run's model and optimizer; nothing from the beginning.</summary>
    public void Restore(nn.Module model, Sgd optimizer, Device device)
    {
        if (Checkpoint is not null) Checkpoints.Restore(Checkpoint, model, optimizer, device);
    }

    /// <summary>The fields whose change would make a resumed run a different run.</summary>
    private static string Identity(TrainOptions o) => SettingsJson(o) + (o.FreezeBackbone ? " freeze-backbone" : ""); // (only when set: earlier runs' checkpoints keep their identity)

    /// <summary>The settings whose change would make a resumed run a different run, as one JSON object.</summary>
    internal static string SettingsJson(TrainOptions o) => JsonSerializer.Serialize(new
    {
        o.Data, o.Arch, o.Images, o.BatchSize, o.BaseLr, o.Schedule, o.WarmupImages, o.Momentum, o.WeightDecay,
        o.Init, o.Seed, o.ImageSize, o.Augment, o.ShuffleBuffer, o.SoftTargets,
    });
}
