using System.Globalization;
using Streaming.Core;
using Streaming.Core.Selection;
using Streaming.Core.Config;

using Streaming.Core.Compute;

using Streaming.Core.Options;
using Streaming.Core.Scoring;

namespace Streaming.Daemon;

/// <summary>
/// <c>daemon.yaml</c>: the teacher, the inbox and state folders, selection, snapshots, the HTTP address, logging
/// and limits. Every key can also be given on the command line (<c>--set key=value</c>, or the named flags),
/// which wins over the file. Validated before anything starts.
/// </summary>
public sealed class DaemonConfig
{
    public static readonly ConfigSchema Schema = new("a daemon config",
    [
        new ConfigKey("teacher", OptionKind.File, null, "the teacher: model.safetensors, a run folder, a .pt state dict or an .onnx model"),
        new ConfigKey("inbox", OptionKind.Path, null, "the folder watched for new shards, image folders, tar shards and shard lists"),
        new ConfigKey("state", OptionKind.Path, null, "the daemon's own folder: checkpoints, score shards, snapshots, quarantine"),
        ConfigKey.From(Knobs.TopP),
        ConfigKey.From(Knobs.K),
        ConfigKey.From(Knobs.P),
        ConfigKey.From(Knobs.Balance),
        ConfigKey.From(Knobs.SelectionSeed),
        ConfigKey.From(Knobs.ScoringBatch),
        ConfigKey.From(Knobs.DecodeWorkers),
        ConfigKey.From(Knobs.Threads),
        ConfigKey.From(Knobs.Device),
        ConfigKey.From(Knobs.Isa),
        ConfigKey.From(Knobs.ChannelsLast),
        new ConfigKey("snapshot.every_shards", OptionKind.Int, 100, "publish a D-hat snapshot after this many new shards (0: never on count)", Min: 0) { Max = 1_000_000_000 },
        new ConfigKey("snapshot.every_minutes", OptionKind.Number, 10.0, "publish after this many minutes with new shards (0: never on time)", Min: 0) { Max = 1_000_000 },
        new ConfigKey("snapshot.on_idle", OptionKind.Bool, true, "publish when the inbox has gone quiet and there is something new"),
        new ConfigKey("snapshot.keep", OptionKind.Int, 5, "snapshots kept; older ones are deleted", Min: 1) { Max = 10_000 },
        new ConfigKey("checkpoint.every_shards", OptionKind.Int, 10, "write the heaps after this many shards (shards in between are replayed from their score shards on restart)", Min: 1) { Max = 1_000_000 },
        new ConfigKey("watch.poll_seconds", OptionKind.Number, 1.0, "how often the inbox is listed", Min: 0.05) { Max = 3600 },
        new ConfigKey("watch.settle_seconds", OptionKind.Number, 2.0, "a drop is taken once unchanged this long (a rename into the inbox is taken at once)", Min: 0) { Max = 86_400 },
        new ConfigKey("watch.stuck_seconds", OptionKind.Number, 600.0, "/healthz turns unhealthy when the inbox loop has not moved for this long (a watchdog)", Min: 1) { Max = 86_400 },
        new ConfigKey("intake.retry_tries", OptionKind.Int, 5, "a drop that keeps failing with an I/O error is quarantined after this many tries ...", Min: 1) { Max = 1_000_000 },
        new ConfigKey("intake.retry_seconds", OptionKind.Number, 60.0, "... and at least this long since its first failure", Min: 0) { Max = 1_000_000 },
        new ConfigKey("http.listen", OptionKind.Text, "127.0.0.1:8617", "address of /metrics, /healthz, /readyz and /status (port 0: any free port; 'off': no HTTP)"),
        new ConfigKey("http.allow_remote", OptionKind.Bool, false, "allow an address other than loopback (all interfaces: 0.0.0.0, [::], *; or a LAN address)"),
        new ConfigKey("http.token_file", OptionKind.Text, "", "a file holding a bearer token that /status and /metrics then require (Authorization: Bearer TOKEN); empty: none"),
        new ConfigKey("log.format", OptionKind.Choice, "text", "console log format", ["text", "json"]),
        new ConfigKey("limits.memory_mb", OptionKind.Int, 4096, "resident memory bound: above it the daemon takes no new shard until memory falls", Min: 64) { Max = 16 << 20 },
        new ConfigKey("limits.max_classes", OptionKind.Int, 100_000, "labels in drops must be below this; a drop with a larger one has that image quarantined", Min: 1) { Max = 100_000_000 },
        new ConfigKey("limits.max_member_mb", OptionKind.Int, 1024, "the largest tar member read; a drop with a larger one is quarantined", Min: 1) { Max = 2047 },
        new ConfigKey("limits.max_row_group_rows", OptionKind.Int, 1 << 20, "the most rows a Parquet row group in a drop may declare", Min: 1) { Max = 100_000_000 },
        new ConfigKey("limits.max_pixels", OptionKind.Int, 100_000_000, "images (and idx headers) declaring more pixels are quarantined", Min: 1) { Max = int.MaxValue / 4 },
        new ConfigKey("cluster", OptionKind.Text, "", "a PostgreSQL connection string: the Orleans cluster's workers score the shards instead of this process (empty: score here)"),
        new ConfigKey("cluster.tls_cert", OptionKind.Text, "", "with cluster: this daemon's certificate (PEM) for mutual TLS with the workers, signed by the cluster's CA"),
        new ConfigKey("cluster.tls_key", OptionKind.Text, "", "with cluster: its private key (PEM)"),
        new ConfigKey("cluster.tls_ca", OptionKind.Text, "", "with cluster: the cluster's CA certificate (PEM)"),
        new ConfigKey("cluster.insecure", OptionKind.Bool, false, "with cluster: allow a cluster beyond loopback without TLS"),
        new ConfigKey("cluster.lease_seconds", OptionKind.Number, 30.0, "with cluster: how long a worker holds a shard without a heartbeat", Min: 1) { Max = 3600 },
        new ConfigKey("shutdown.timeout_seconds", OptionKind.Number, 8.0, "on SIGTERM/SIGINT: time to finish the batch in flight and checkpoint", Min: 1) { Max = 3600 },
    ], "scoring.k=1000");

    private readonly SortedDictionary<string, object> _v;

    private DaemonConfig(string path, SortedDictionary<string, object> values, ScoringSpec scoring)
    {
        Path = path;
        _v = values;
        Scoring = scoring;
    }

    /// <summary>The config file, or "(flags)" when there is none.</summary>
    public string Path { get; }

    public IReadOnlyDictionary<string, object> Values => _v;

    public string Teacher => (string)_v["teacher"];
    public string Inbox => (string)_v["inbox"];
    public string State => (string)_v["state"];
    /// <summary>The scoring's knobs (selection and compute included), bound and validated once.</summary>
    public ScoringSpec Scoring { get; }
    public int SnapshotEveryShards => (int)_v["snapshot.every_shards"];
    public TimeSpan SnapshotEvery => TimeSpan.FromMinutes((double)_v["snapshot.every_minutes"]);
    public bool SnapshotOnIdle => (bool)_v["snapshot.on_idle"];
    public int SnapshotKeep => (int)_v["snapshot.keep"];
    public int CheckpointEveryShards => (int)_v["checkpoint.every_shards"];
    public TimeSpan StuckAfter => TimeSpan.FromSeconds((double)_v["watch.stuck_seconds"]);
    public int RetryTries => (int)_v["intake.retry_tries"];
    public TimeSpan RetryWindow => TimeSpan.FromSeconds((double)_v["intake.retry_seconds"]);
    public TimeSpan Poll => TimeSpan.FromSeconds((double)_v["watch.poll_seconds"]);
    public TimeSpan Settle => TimeSpan.FromSeconds((double)_v["watch.settle_seconds"]);
    public string? Listen => (string)_v["http.listen"] is "off" ? null : (string)_v["http.listen"];
    public string? Cluster => (string)_v["cluster"] is { Length: > 0 } c ? c : null;
    public double LeaseSeconds => (double)_v["cluster.lease_seconds"];

    /// <summary>The cluster to score on, with its TLS (null: score here).</summary>
    public Streaming.Cluster.Client.ClusterConnection? ClusterConnection => Cluster is string text
        ? Streaming.Cluster.Client.ClusterConnection.Parse(text, State) with
        {
            Tls = Streaming.Cluster.Client.ClusterTls.From(Text("cluster.tls_cert"), Text("cluster.tls_key"), Text("cluster.tls_ca")),
            Insecure = (bool)_v["cluster.insecure"],
        }
        : null;

    private string? Text(string key) => (string)_v[key] is { Length: > 0 } t ? System.IO.Path.GetFullPath(t, System.IO.Path.GetDirectoryName(Path) ?? ".") : null;
    public string? TokenFile => (string)_v["http.token_file"] is { Length: > 0 } f ? f : null;
    public bool JsonLogs => (string)_v["log.format"] == "json";
    public Streaming.Core.Ingest.SourceLimits SourceLimits => new()
    {
        MaxClasses = (int)_v["limits.max_classes"],
        MaxMemberBytes = (int)_v["limits.max_member_mb"] * 1024L * 1024L,
        MaxRowGroupRows = (int)_v["limits.max_row_group_rows"],
        MaxImagePixels = (int)_v["limits.max_pixels"],
    };
    public long MemoryLimitBytes => (int)_v["limits.memory_mb"] * 1024L * 1024L;
    public TimeSpan ShutdownTimeout => TimeSpan.FromSeconds((double)_v["shutdown.timeout_seconds"]);

    /// <summary>Reads <paramref name="path"/> (or nothing) and applies <paramref name="sets"/> on top; checks everything.</summary>
    public static DaemonConfig Load(string? path, IReadOnlyList<string> sets)
    {
        string text = "";
        string where = "(command line)";
        if (path is not null)
        {
            if (!File.Exists(path)) throw new StreamingException($"{path}: daemon config not found");
            text = File.ReadAllText(path);
            where = System.IO.Path.GetFullPath(path);
        }
        else
        {
            // Relative paths given as flags are relative to the working directory.
            where = System.IO.Path.Combine(Directory.GetCurrentDirectory(), "(command line)");
        }
        var parsed = Schema.Parse(text, where, sets);
        var v = parsed.Values;
        foreach (var required in new[] { "teacher", "inbox", "state", "scoring.k" })
            if (!v.ContainsKey(required))
                throw new StreamingException($"{(path ?? "daemon")}: missing '{required}' ({Schema.Key(required).Help}); give it in the config or as --{required.Replace("scoring.", "", StringComparison.Ordinal)}");
        ScoringSpec scoring;
        try
        {
            scoring = ScoringSpec.From(v);
        }
        catch (OptionException e)
        {
            throw new StreamingException(e.ForFile(parsed.Where(e.Spec.Key)));
        }
        string inbox = System.IO.Path.GetFullPath((string)v["inbox"]), state = System.IO.Path.GetFullPath((string)v["state"]);
        if (inbox == state || state.StartsWith(inbox + "/", StringComparison.Ordinal))
            throw new StreamingException($"{parsed.Where("state")}: the state folder ({state}) must not be the inbox ({inbox}) or inside it");
        var config = new DaemonConfig(where, v, scoring);
        config.ParseListen(parsed.Where("http.listen"));
        config.ReadToken();
        return config;
    }

    /// <summary>
    /// The HTTP address as an IP address (or localhost) and port. Anything but loopback, in any spelling
    /// (<c>0</c>, <c>[::0]</c>, <c>*</c>, a LAN address), needs <c>http.allow_remote</c>; host names other than
    /// localhost are refused, since what they resolve to can change.
    /// </summary>
    public (System.Net.IPAddress? Address, int Port)? ParseListen(string? where = null)
    {
        if (Listen is not string listen) return null;
        return HttpListen.Parse(listen, (bool)_v["http.allow_remote"], $"{where ?? Path}: http.listen", "set http.allow_remote: true to mean it");
    }

    /// <summary>The bearer token from <c>http.token_file</c>, or null; refuses an empty or short one.</summary>
    public string? ReadToken()
    {
        if (TokenFile is not string file) return null;
        string path = System.IO.Path.IsPathRooted(file) ? file : System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Path) ?? ".", file);
        return HttpListen.ReadToken(path, $"{Path}: http.token_file");
    }

    /// <summary>What must not change under an existing state folder (else its heaps and snapshots would mix two selections).</summary>
    public SortedDictionary<string, string> Identity(string teacherSha256) => new(StringComparer.Ordinal)
    {
        ["teacher_sha256"] = teacherSha256,
        ["top_p"] = Scoring.TopP.ToString(CultureInfo.InvariantCulture),
        ["k"] = Scoring.K!.Value.ToString(CultureInfo.InvariantCulture),
        ["p"] = Scoring.P.ToString(CultureInfo.InvariantCulture),
        ["balance"] = BalanceModes.Name(Scoring.Balance),
        ["seed"] = Scoring.Seed.ToString(CultureInfo.InvariantCulture),
    };
}
