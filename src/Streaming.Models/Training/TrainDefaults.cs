using System.Globalization;
using System.Text.Json;
using Streaming.Core.Datasets;

namespace Streaming.Models.Training;

/// <summary>
/// What a run does where its options say nothing: the values of the run being resumed (its <c>config.json</c>), else
/// <see cref="TrainRecipe"/>'s, else fixed defaults. The resolved options are what <c>config.json</c> and every
/// checkpoint hold.
/// </summary>
internal static class TrainDefaults
{
    /// <summary>Fills in every default, so the options say exactly what the run does.</summary>
    public static TrainOptions Resolve(TrainOptions o, DatasetManifest manifest, int imageSize)
    {
        if (o.Images is not null && o.Epochs is not null) throw new ArgumentException("give --images or --epochs, not both");
        if (o.BatchSize < 1) throw new ArgumentException("--batch must be at least 1");
        if (o.FreezeBackbone && o.Init is null) throw new ArgumentException("--freeze-backbone needs --init: a backbone to keep");
        long epochImages = manifest.Labeled;
        // What is not given comes from the recipe for this architecture and data size, and the log says which.
        var recipe = TrainRecipe.For(o.Arch, epochImages, fineTuning: o.Init is not null, frozenBackbone: o.FreezeBackbone);
        long images = o.Images ?? (o.Epochs is double epochs ? (long)Math.Round(epochs * epochImages) : recipe.Images);
        if (images < 1) throw new ArgumentException("the training budget must be at least one image");
        var schedule = o.Schedule ?? recipe.Schedule;
        double baseLr = o.BaseLr ?? recipe.BaseLr;
        double weightDecay = o.WeightDecay ?? recipe.WeightDecay;
        bool augment = o.Augment ?? recipe.Augment;
        var defaulted = new List<string>();
        if (o.Images is null && o.Epochs is null) defaulted.Add(string.Create(CultureInfo.InvariantCulture, $"--images {images}"));
        if (o.Schedule is null) defaulted.Add($"--schedule {schedule.ToString().ToLowerInvariant()}");
        if (o.BaseLr is null) defaulted.Add(string.Create(CultureInfo.InvariantCulture, $"--lr {baseLr:G4}"));
        if (o.WeightDecay is null) defaulted.Add(string.Create(CultureInfo.InvariantCulture, $"--weight-decay {weightDecay:G4}"));
        if (o.Augment is null) defaulted.Add(augment ? "--augment" : "--no-augment");
        return o with
        {
            WeightDecay = weightDecay,
            Augment = augment,
            RecipeNote = defaulted.Count == 0 ? null : $"defaults: {string.Join(" ", defaulted)} (the recipe for {recipe.Why}; a flag given wins)",
            Data = Path.GetFullPath(o.Data),
            Out = Path.GetFullPath(o.Out),
            Init = o.Init is null ? null : Path.GetFullPath(o.Init),
            EvalData = o.EvalData is null ? null : Path.GetFullPath(o.EvalData),
            Images = images,
            Epochs = null,
            Schedule = schedule,
            BaseLr = baseLr,
            WarmupImages = o.WarmupImages ?? images * 3 / 100,
            ImageSize = imageSize,
            Threads = o.Threads ?? Environment.ProcessorCount,
            CheckpointEvery = o.CheckpointEvery ?? Math.Max(epochImages, 10_000),
            EvalEvery = o.EvalEvery ?? Math.Max(epochImages, 10_000),
            LogEveryImages = o.LogEveryImages ?? Math.Max(o.BatchSize, images / 200),
        };
    }

    /// <summary>
    /// On --resume, what was left to defaults takes the values the run was started with (its config.json), not today's
    /// recipe: a run begun before the recipe changed still resumes.
    /// </summary>
    public static TrainOptions WithSavedSettings(TrainOptions o)
    {
        string config = Path.Combine(o.Out, Trainer.ConfigFile);
        if (!o.Resume || !File.Exists(config)) return o;
        TrainOptions? saved;
        try
        {
            saved = JsonSerializer.Deserialize<TrainOptions>(File.ReadAllText(config));
        }
        catch (JsonException)
        {
            return o;
        }
        if (saved is null) return o;
        return o with
        {
            Images = o.Images ?? (o.Epochs is null ? saved.Images : null),
            Schedule = o.Schedule ?? saved.Schedule,
            BaseLr = o.BaseLr ?? saved.BaseLr,
            WeightDecay = o.WeightDecay ?? saved.WeightDecay,
            Augment = o.Augment ?? saved.Augment,
        };
    }
}
