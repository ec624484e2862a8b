using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Streaming.Core;
using Streaming.Core.Compute;
using Streaming.Models.Compute;
using Streaming.Models;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// Runs a pipeline: the stages of <see cref="PipelineGraph"/> that its manifest switches on, in order, each evaluated
/// where it trains a model, then writes run.json.
/// <para>
/// Every stage is content-addressed (<see cref="StageCache"/>): its key hashes the stage's parameters and the output hashes
/// of the stages it reads, and its outputs live in <c>cache/NAME-KEY/</c>. A stage whose key already has a folder is reused,
/// so changing K reruns select and what follows, not the teacher or the scoring.
/// </para>
/// </summary>
public sealed class PipelineRunner
{
    public const string RunFileName = RunRecord.FileName;

    private readonly PipelineManifest _m;
    private readonly string _out;
    private readonly Action<string> _log;
    private readonly IProgress<StageProgress>? _progress;
    private readonly List<StageRecord> _records = [];
    private ComputeEnvironment? _compute;

    /// <param name="log">Lines for a log: the kernels, each stage's start with its parameters, its end with its metrics.</param>
    /// <param name="progress">Each stage's state as it changes, and the running stage's fraction, images/s and ETA.</param>
    public PipelineRunner(PipelineManifest manifest, string output, Action<string>? log = null, IProgress<StageProgress>? progress = null)
    {
        _m = manifest;
        _out = Path.GetFullPath(output);
        _log = log ?? (_ => { });
        _progress = progress;
    }

    /// <summary>This run's stages, in order: the graph's, with the optional ones its manifest switches on.</summary>
    public IReadOnlyList<PipelineStage> Stages => PipelineGraph.StagesOf(_m.Spec);

    /// <summary>The cache folder, under the run folder.</summary>
    public string CacheDir => Path.Combine(_out, "cache");

    /// <summary>The stages' records so far, in order.</summary>
    public IReadOnlyList<StageRecord> Records => _records;

    /// <summary>Runs (or reuses) every stage, with the kernels the manifest pins held for the whole run, and writes run.json.</summary>
    public async Task<RunRecord> RunAsync(CancellationToken cancellationToken = default)
    {
        var cache = new StageCache(_out);
        Directory.CreateDirectory(cache.Dir);
        var clock = Stopwatch.StartNew();
        var started = DateTimeOffset.UtcNow;
        var spec = _m.Spec;
        Kernels.Configure(spec.Scoring.Compute.Isa, spec.Scoring.Compute.Threads, spec.Scoring.Compute.ChannelsLast, "compute.isa");
        using var held = await Kernels.AcquireAsync(spec.Scoring.Compute.Threads, spec.Scoring.Compute.ChannelsLast, cancellationToken);
        _compute = Kernels.Current(spec.Scoring.Compute.Threads);
        _log($"kernels: {_compute}");
        var run = new StageRun(spec, Stages, _log, _progress, cancellationToken);
        var keys = new KeyContext(spec, Kernels.KernelKey(_compute), Hashing.SourceSha256, Hashing.Sha256File);
        foreach (var stage in run.Stages) _records.Add(await cache.RunAsync(stage, run, keys));
        var record = Record(started, clock.Elapsed);
        record.Save(Path.Combine(_out, RunRecord.FileName));
        return record;
    }

    /// <summary>run.json: the resolved manifest, every stage's record, every metric, and where and on what the run ran.</summary>
    private RunRecord Record(DateTimeOffset started, TimeSpan wall) => new()
    {
        Manifest = _m.Path,
        ManifestSha256 = File.Exists(_m.Path) ? Hashing.Sha256File(_m.Path) : null,
        Resolved = Elements(_m.Values),
        Metrics = new SortedDictionary<string, double>(_records.SelectMany(r => r.Metrics).ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal),
        Stages = _records.Select(Entry).ToList(),
        Started = started.ToString("o", CultureInfo.InvariantCulture),
        WallSeconds = Math.Round(wall.TotalSeconds, 1),
        Machine = MachineInfo.Here(_m.Spec.Scoring.Compute.Threads),
        Compute = _compute,
        Versions = new(StringComparer.Ordinal)
        {
            ["engine"] = typeof(PipelineRunner).Assembly.GetName().Version?.ToString(),
            ["dotnet"] = Environment.Version.ToString(),
            ["torchsharp"] = typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString(),
            ["torch_backend"] = TorchDevice.Backend,
        },
        Engine = BuildInfo.Current,
        World = World(),
    };

    /// <summary>The world of each stage trained on more than one rank, as its rank 0 recorded it (config.json).</summary>
    private SortedDictionary<string, Streaming.Models.Training.DistributedInfo>? World()
    {
        var world = new SortedDictionary<string, Streaming.Models.Training.DistributedInfo>(StringComparer.Ordinal);
        foreach (var r in _records)
        {
            string config = Path.Combine(r.Folder, Streaming.Models.Training.Trainer.ConfigFile);
            if (!r.Parameters.ContainsKey("ranks") || !File.Exists(config)) continue;
            if (JsonSerializer.Deserialize<Streaming.Models.Training.TrainOptions>(File.ReadAllText(config))?.Distributed is { } d) world[r.Name] = d;
        }
        return world.Count > 0 ? world : null;
    }

    private StageEntry Entry(StageRecord r) => new(r.Name, r.Key, r.Reused, Math.Round(r.WallSeconds, 1), Path.GetRelativePath(_out, r.Folder),
        Elements(r.Parameters), new SortedDictionary<string, string>(r.Inputs.ToDictionary(), StringComparer.Ordinal),
        new SortedDictionary<string, string>(r.Outputs.ToDictionary(), StringComparer.Ordinal), r.OutputSha256,
        new SortedDictionary<string, double>(r.Metrics.ToDictionary(), StringComparer.Ordinal));

    private static SortedDictionary<string, JsonElement> Elements(IReadOnlyDictionary<string, object> values) =>
        new(values.ToDictionary(kv => kv.Key, kv => JsonSerializer.SerializeToElement(kv.Value)), StringComparer.Ordinal);
}
