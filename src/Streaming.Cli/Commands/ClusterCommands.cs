using System.CommandLine;
using Streaming.Cli.Shared;
using Streaming.Daemon;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans;
using Orleans.Runtime;
using Streaming.Cluster;
using Streaming.Cluster.Client;
using Streaming.Core;
using Streaming.Core.Compute;
using Streaming.Engine.Scoring;
using Streaming.Models.Compute;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming worker</c>: a silo that hosts the cluster's grains and scores the shards it leases.</summary>
public static class WorkerCommand
{
    public static Command Create()
    {
        var cluster = new ClusterFlags();
        var dataRoots = new Option<string[]>("--data-root") { Description = "A folder jobs' teachers and data may lie in (repeatable); a job outside every root is refused. Needed beyond loopback", AllowMultipleArgumentsPerToken = false };
        var outRoots = new Option<string[]>("--out-root") { Description = "A folder jobs may write their output into (repeatable); a job outside every root is refused. Needed beyond loopback", AllowMultipleArgumentsPerToken = false };
        var siloPort = new Option<int>("--silo-port") { Description = "Port silos talk to each other on", DefaultValueFactory = _ => 11111 };
        var gatewayPort = new Option<int>("--gateway-port") { Description = "Port clients (score --cluster, cluster status) connect to", DefaultValueFactory = _ => 30000 };
        var advertise = new Option<string?>("--advertise") { Description = "Address other machines reach this one by (default: loopback when PostgreSQL is local, else this machine's first address)" };
        var name = new Option<string?>("--name") { Description = "Worker id in status and leases (default: host-pid-random)" };
        var prefetch = new Option<int>("--prefetch") { Description = "Shards leased ahead of the one in flight", DefaultValueFactory = _ => 4 };
        var partialEvery = new Option<int>("--partial-every") { Description = "Checkpoint the partial selector after this many committed shards", DefaultValueFactory = _ => 32 };
        var workers = KnobOption.Create<int>(Streaming.Core.Options.Knobs.DecodeWorkers);
        var compute = new ComputeFlags();
        var command = new Command("worker", "Run a cluster worker: an Orleans silo that leases shards of the cluster's scoring jobs and scores them (SIGTERM hands its leases back).")
        {
            siloPort, gatewayPort, advertise, name, prefetch, partialEvery, workers, dataRoots, outRoots,
        };
        cluster.AddTo(command);
        command.Options.Add(compute.Isa);
        command.Options.Add(compute.Device);
        command.Options.Add(compute.ChannelsLast);
        command.SetAction(async (parse, cancellationToken) =>
        {
            // The job fixes the threads; the ISA is this process's, pinned now (a job refuses a worker with other kernels).
            Kernels.Configure(KernelIsas.Parse(parse.GetValue(compute.Isa)!), null, parse.GetValue(compute.ChannelsLast));
            var connection = cluster.Bind(parse, Path.Combine(Environment.CurrentDirectory, ".streaming-cluster"))!;
            IPAddress? address = parse.GetValue(advertise) is string a ? IPAddress.Parse(a) : null;
            var endpoints = new SiloEndpoints(parse.GetValue(siloPort), parse.GetValue(gatewayPort), address);
            var options = new WorkerOptions
            {
                Device = parse.GetValue(compute.Device)!, DecodeWorkers = parse.GetValue(workers), Prefetch = Math.Max(1, parse.GetValue(prefetch)),
                PartialEveryShards = Math.Max(1, parse.GetValue(partialEvery)),
                DataRoots = [.. (parse.GetValue(dataRoots) ?? []).Select(Path.GetFullPath)], OutRoots = [.. (parse.GetValue(outRoots) ?? []).Select(Path.GetFullPath)],
            };
            // Refused before anything is sent: no TLS beyond loopback (unless --insecure), no roots beyond loopback.
            var advertised = ClusterHosting.AdvertisedAddress(connection, endpoints);
            connection.RequireTlsBeyondLoopback("worker", advertised);
            if (!IPAddress.IsLoopback(advertised) && (options.DataRoots.Count == 0 || options.OutRoots.Count == 0))
                throw new Streaming.Core.StreamingException($"worker: it advertises {advertised}, beyond loopback, so jobs from other machines name its paths; give --data-root and --out-root (the folders jobs may read and write)");
            await ClusterSchema.EnsureAsync(connection, cancellationToken);
            if (parse.GetValue(name) is string id) options = options with { Id = id };
            using var host = ClusterNode.BuildSilo(connection, endpoints, options);
            Console.Error.WriteLine($"worker {options.Id}: cluster {connection}, silo port {parse.GetValue(siloPort)}, gateway port {parse.GetValue(gatewayPort)}");
            var worker = host.Services.GetRequiredService<ScoringWorker>(); // before RunAsync, which disposes the services
            await host.RunAsync(cancellationToken);
            // The host stops cleanly even when the worker failed: say so, and exit non-zero for systemd to restart it.
            if (worker.ExecuteTask is { IsFaulted: true } failed)
            {
                Console.Error.WriteLine($"error: the worker stopped: {failed.Exception!.GetBaseException().Message}");
                return (int)ExitCode.InternalError;
            }
            return (int)ExitCode.Ok;
        });
        return command;
    }


}

/// <summary><c>streaming cluster status</c>: workers, jobs and leases.</summary>
public static class ClusterCommand
{
    public static Command Create()
    {
        var cluster = new ClusterFlags();
        var json = new Option<bool>("--json") { Description = "One JSON document on stdout" };
        var serve = new Option<string?>("--serve") { Description = "Stay up and serve a live dashboard of the cluster at this address (host:port, port 0 for a free one): / and /status (the --json document, with images/s over the last hour)" };
        var allowRemote = new Option<bool>("--allow-remote") { Description = "Let --serve listen on an address other machines can reach" };
        var tokenFile = new Option<string?>("--token-file") { Description = "With --serve: /status needs this bearer token (a file holding one token of at least 16 characters); open the page as /#token=TOKEN" };
        var status = new Command("status", "Workers, jobs and their leases") { json, serve, allowRemote, tokenFile };
        cluster.AddTo(status);
        status.SetAction(async (parse, cancellationToken) =>
        {
            var connection = cluster.Bind(parse, Path.Combine(Environment.CurrentDirectory, ".streaming-cluster"))!;
            if (connection.IsLocalhost) throw new StreamingException("cluster status needs a PostgreSQL cluster: a localhost cluster lives inside its 'score --cluster localhost' process");
            // The address and token are checked before connecting, so that a typo costs no wait.
            var listen = parse.GetValue(serve) is string where ? HttpListen.Parse(where, parse.GetValue(allowRemote), "--serve") : ((System.Net.IPAddress?, int)?)null;
            string? token = parse.GetValue(tokenFile) is string file ? HttpListen.ReadToken(file, "--token-file") : null;
            await ClusterSchema.EnsureAsync(connection, cancellationToken);
            using var host = ClusterClient.Build(connection);
            await ClusterClient.StartAsync(host, connection, cancellationToken);
            var client = host.Services.GetRequiredService<IClusterClient>();
            if (listen is { } at)
            {
                int code = await ClusterDashboard.RunAsync(() => ClusterStatusReport.CollectAsync(client), at, token,
                    line => Console.Error.WriteLine(line), cancellationToken);
                await host.StopAsync(CancellationToken.None);
                return code;
            }
            var report = await ClusterStatusReport.CollectAsync(client);
            await host.StopAsync(CancellationToken.None);
            if (parse.GetValue(json))
            {
                Console.WriteLine(report.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                return (int)ExitCode.Ok;
            }
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"silos: {report.Silos.Count}");
            foreach (var h in report.Silos) Console.WriteLine(string.Create(inv, $"  {h.Name,-28} {h.Address,-24} {h.Status,-8} up since {h.StartedUtc:u}"));
            Console.WriteLine($"jobs: {report.Jobs.Count}");
            foreach (var j in report.Jobs)
            {
                Console.WriteLine(string.Create(inv, $"  {j.Key}  {(j.Finished ? "finished" : j.Complete ? "scored" : "running")}  {j.Done}/{j.Shards} shards done, {j.Leased} leased, {j.Pending} pending, {j.Failed} failed  {j.ImagesPerSecond:N0} images/s  -> {j.Out}"));
                foreach (var w in j.Workers)
                    Console.WriteLine(string.Create(inv, $"    {w.Worker,-28} {w.Leased,3} leased {w.Shards,6} shards {w.Images,12:N0} images {w.ImagesPerSecond,8:N0} images/s  seen {w.LastSeenUtc:HH:mm:ss}"));
                foreach (var r in j.Refusals) Console.WriteLine($"    refused: {r}");
            }
            return (int)ExitCode.Ok;
        });
        return new Command("cluster", "The Orleans cluster: its workers and jobs") { status, Certs() };
    }

    /// <summary><c>cluster certs</c>: a CA and node certificates signed by it, for trying a TLS cluster out.</summary>
    private static Command Certs()
    {
        var output = new Option<string>("--out", "-o") { Description = "Folder for ca.pem, ca.key and NAME.pem, NAME.key each (an existing ca.pem/ca.key there signs the new ones)", Required = true };
        var names = new Option<string>("--names") { Description = "Comma-separated node names, e.g. w1,w2,submitter,postgres", Required = true };
        var hosts = new Option<string?>("--hosts") { Description = "Comma-separated host names or addresses every certificate also names (besides its own name, localhost and 127.0.0.1)" };
        var days = new Option<int>("--days") { Description = "Validity of the node certificates", DefaultValueFactory = _ => 365 };
        var certs = new Command("certs", "Make a cluster CA and certificates signed by it (PEM), for mutual TLS between workers, clients and PostgreSQL") { output, names, hosts, days };
        certs.SetAction(parse =>
        {
            static string[] List(string? text) => (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (parse.GetValue(days) is < 1 or > 36500) throw new ArgumentException("--days must be 1 to 36500");
            var written = ClusterCertificates.Write(parse.GetValue(output)!, List(parse.GetValue(names)), List(parse.GetValue(hosts)), TimeSpan.FromDays(parse.GetValue(days)));
            foreach (var file in written) Console.WriteLine(file);
            Console.Error.WriteLine("keys (*.key) are readable by their owner only; keep ca.key off the workers: it signs new members");
            return (int)ExitCode.Ok;
        });
        return certs;
    }
}

/// <summary><c>streaming score --cluster</c>: the job submitted to (or attached on) a cluster, followed, and its outputs written.</summary>
internal static class ClusterScore
{
    public static async Task<int> RunAsync(ScoreOptions options, ClusterConnection connection, double leaseSeconds, string isa, CancellationToken cancellationToken)
    {
        var spec = ClusterJobs.SpecFor(options, isa, leaseSeconds);
        IReadOnlyList<string> classes;
        using (var teacher = FileTeacherSource.Instance.Open(spec.Teacher, options.Scoring.Compute.Device, Math.Max(1, spec.Threads)))
            classes = teacher.Spec.Classes;
        Directory.CreateDirectory(options.Out);
        IHost host;
        if (connection.IsLocalhost)
        {
            // One process: a silo with its own worker, state in OUT/.cluster (a rerun attaches and resumes).
            host = ClusterNode.BuildSilo(connection, new SiloEndpoints(ClusterHosting.FreePort(), ClusterHosting.FreePort()),
                new WorkerOptions { Device = options.Scoring.Compute.Device, DecodeWorkers = options.Scoring.DecodeWorkers });
        }
        else
        {
            await ClusterSchema.EnsureAsync(connection, cancellationToken);
            host = ClusterClient.Build(connection);
        }
        using (host)
        {
            if (connection.IsLocalhost) await host.StartAsync(cancellationToken);
            else await ClusterClient.StartAsync(host, connection, cancellationToken);
            var client = host.Services.GetRequiredService<IClusterClient>();
            var console = new ConsoleProgress();
            var inv = CultureInfo.InvariantCulture;
            var progress = new Progress<JobStatus>(s => console.Report(
                string.Create(inv, $"  {s.Done}/{s.Shards} shards done, {s.Leased} leased, {s.Pending} pending  {s.Images:N0} images  {s.ImagesPerSecond:N0} images/s  ") +
                string.Join(" ", s.Workers.Where(w => w.Leased > 0 || w.Shards > 0).Select(w => string.Create(inv, $"[{w.Worker}: {w.ImagesPerSecond:N0}/s]")))));
            ClusterScoreResult result;
            try
            {
                result = await ClusterJobs.RunAsync(client, spec, classes, progress, line => { console.Done(); Console.Error.WriteLine(line); }, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                console.Done();
                Console.Error.WriteLine(connection.IsLocalhost
                    ? $"stopped; job {spec.Key} resumes where it was when the same command runs again"
                    : $"detached; job {spec.Key} goes on in the cluster: run the same command again to attach");
                await host.StopAsync(CancellationToken.None);
                return (int)ExitCode.Cancelled;
            }
            finally
            {
                console.Done();
            }
            await host.StopAsync(CancellationToken.None);
            var s = result.Status;
            Console.WriteLine(string.Create(inv, $"scored {s.Images:N0} images in job {s.Key} ({s.ImagesPerSecond:N0} images/s over the cluster); {s.Done} shards done, {s.Failed} failed; {result.Scoring.Shards.Sum(x => x.Quarantined):N0} quarantined"));
            Console.WriteLine("  worker                        shards       images   images/s");
            foreach (var w in s.Workers) Console.WriteLine(string.Create(inv, $"  {w.Worker,-28} {w.Shards,7} {w.Images,12:N0} {w.ImagesPerSecond,10:N0}"));
            if (result.Selection is { } sel) Console.WriteLine(string.Create(inv, $"D-hat: {sel.Selected:N0} rows ({sel.DistinctImages:N0} distinct images), K={sel.K}, P={sel.P}, {sel.Balance} -> {Path.Combine(options.Out, "selection")}"));
            foreach (var f in result.Scoring.FailedShards) Console.Error.WriteLine($"failed shard: {f.Input}: {f.Error}");
            return result.Scoring.FailedShards.Count > 0 ? (int)ExitCode.PartialFailure : (int)ExitCode.Ok;
        }
    }
}
