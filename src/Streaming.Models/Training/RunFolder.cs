using System.Text.Json;
using Streaming.Core;
using Streaming.Models.Evaluation;
using Streaming.Models.IO;
using static TorchSharp.torch;

namespace Streaming.Models.Training;

/// <summary>
/// Everything a run writes into its folder (<c>--out</c>): <c>config.json</c>, <c>metrics.jsonl</c>, checkpoints, and at
/// the end the model, <c>eval.json</c> and <c>curves.png</c>. The one gate of file writing: a folder that does not
/// write (a rank other than 0 of a <see cref="IProcessGroup"/>) checks what it is told but writes nothing.
/// </summary>
internal sealed class RunFolder : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };
    private readonly string _out;
    private readonly bool _writes;
    private StreamWriter? _metrics;

    private RunFolder(string output, bool writes)
    {
        _out = output;
        _writes = writes;
    }

    /// <summary>The metrics file: one JSON line a logged step or evaluation.</summary>
    public string MetricsPath => Path.Combine(_out, Trainer.MetricsFile);

    /// <summary>
    /// The folder of <paramref name="o"/>'s run, emptied on <c>--overwrite</c>; one that holds an earlier run's checkpoints
    /// is refused unless the run resumes.
    /// </summary>
    public static RunFolder Prepare(TrainOptions o, bool writes)
    {
        if (writes && o.Overwrite && Directory.Exists(o.Out))
        {
            foreach (var f in Directory.EnumerateFiles(o.Out)) File.Delete(f);
            if (Directory.Exists(Checkpoints.Folder(o.Out))) Directory.Delete(Checkpoints.Folder(o.Out), true);
        }
        // With --overwrite only the writing rank looks: the others would race it while it empties the folder.
        if (!o.Resume && !(o.Overwrite && !writes) && Checkpoints.Latest(o.Out) is not null)
            throw new StreamingException($"{o.Out}: holds checkpoints of an earlier run; pass --resume to continue it or --overwrite to start again");
        if (writes) Directory.CreateDirectory(o.Out);
        return new RunFolder(o.Out, writes);
    }

    /// <summary>Writes the resolved options, which say exactly what the run does.</summary>
    public void WriteConfig(TrainOptions o)
    {
        if (_writes) AtomicFile.WriteAllText(Path.Combine(_out, Trainer.ConfigFile), JsonSerializer.Serialize(o, Json));
    }

    /// <summary>Opens the metrics file for appending, without the lines past <paramref name="imagesSeen"/> (the point a run resumes from).</summary>
    public void OpenMetrics(long imagesSeen)
    {
        if (!_writes) return;
        TrimMetrics(MetricsPath, imagesSeen);
        _metrics = new StreamWriter(MetricsPath, append: true) { AutoFlush = true };
    }

    /// <summary>Appends one line to the metrics file: <paramref name="line"/> as JSON.</summary>
    public async Task WriteMetricAsync<T>(T line)
    {
        if (_metrics is not null) await _metrics.WriteLineAsync(JsonSerializer.Serialize(line)).ConfigureAwait(false);
    }

    /// <summary>A checkpoint a killed run continues from exactly (<see cref="Checkpoints"/>).</summary>
    public void SaveCheckpoint(nn.Module model, ModelSpec spec, Sgd optimizer, CheckpointState state)
    {
        if (_writes) Checkpoints.Save(_out, model, spec, optimizer, state);
    }

    /// <summary>The trained model, the last evaluation and the curves; returns the model's path.</summary>
    public async Task<string> FinishAsync(nn.Module model, ModelSpec spec, EvalResult? lastEval, string title, CancellationToken cancellationToken)
    {
        string modelPath = Path.Combine(_out, ModelFile.DefaultName);
        if (!_writes) return modelPath;
        ModelFile.Save(modelPath, model, spec);
        if (lastEval is not null) await AtomicFile.WriteAllTextAsync(Path.Combine(_out, Trainer.EvalFile), lastEval.ToJson(), cancellationToken).ConfigureAwait(false);
        TrainingCurves.Draw(MetricsPath, Path.Combine(_out, Trainer.CurvesFile), title);
        return modelPath;
    }

    /// <summary>Closes the metrics file.</summary>
    public ValueTask DisposeAsync() => _metrics?.DisposeAsync() ?? ValueTask.CompletedTask;

    /// <summary>Drops metric lines past the checkpoint a run resumes from, so nothing is counted twice.</summary>
    private static void TrimMetrics(string path, long imagesSeen)
    {
        if (!File.Exists(path)) return;
        var keep = File.ReadAllLines(path).Where(line =>
        {
            try
            {
                using var doc = JsonDocument.Parse(line);
                return doc.RootElement.GetProperty("images").GetInt64() <= imagesSeen;
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                return false; // a line cut short by a kill
            }
        }).ToList();
        AtomicFile.WriteAllText(path, string.Concat(keep.Select(l => l + "\n")));
    }
}
