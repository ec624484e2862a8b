using System.Globalization;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Loading;
using Streaming.Core.Selection;

namespace Streaming.Models.Training;

/// <summary>
/// The labeled images a run trains on: the dataset's folder and manifest, and the size of its first labeled image
/// (what the input size and channels default to).
/// </summary>
internal sealed record TrainingData(string Folder, DatasetManifest Manifest, int Width, int Height, int Channels)
{
    /// <summary>The folder of a D-hat selection's images, inside the selection folder.</summary>
    private const string SelectionImagesFolder = "images";

    /// <summary>
    /// Opens <paramref name="data"/>: an image dataset, or a selection folder (D-hat from <c>streaming select</c>), which
    /// trains as the dataset of its images, copied once into <c>images/</c> inside it and labeled with the class each
    /// was selected for (<see cref="SelectionImages.ToDatasetAsync"/>). A process that does not write files (rank 1 and
    /// up of a <see cref="IProcessGroup"/>) reads the copy that rank 0 made.
    /// </summary>
    public static async Task<TrainingData> OpenAsync(string data, bool writes, Action<string> log, CancellationToken cancellationToken)
    {
        if (!File.Exists(Path.Combine(data, DatasetManifest.FileName)) && File.Exists(Path.Combine(data, SelectionManifest.FileName)))
        {
            string images = Path.Combine(data, SelectionImagesFolder);
            if (writes) await SelectionImages.ToDatasetAsync(data, images, log: log, cancellationToken: cancellationToken).ConfigureAwait(false);
            data = images;
        }
        var manifest = DatasetManifest.Load(data);
        if (manifest.Labeled == 0) throw new StreamingException($"{data}: has no labeled images to train on");
        var (width, height, channels) = await manifest.FirstImageAsync(data, labeledOnly: true, cancellationToken).ConfigureAwait(false);
        return new TrainingData(data, manifest, width, height, channels);
    }

    /// <summary>The teacher's probabilities that <paramref name="o"/> trains on instead of the labels, or null: the labels.</summary>
    public static async Task<SoftTargets?> SoftTargetsAsync(TrainOptions o, Action<string> log, CancellationToken cancellationToken)
    {
        if (o.SoftTargets is null) return null;
        var soft = await SoftTargets.LoadAsync(o.SoftTargets, o.Data, cancellationToken).ConfigureAwait(false);
        log(string.Create(CultureInfo.InvariantCulture, $"soft targets: the teacher's top-{soft.TopP} probabilities of {soft.Count:N0} images, from {o.SoftTargets}"));
        return soft;
    }
}
