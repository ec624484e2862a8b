using System.Globalization;
using System.Text.Json.Nodes;
using Streaming.Cluster;
using Streaming.Cluster.Client;
using Streaming.Core.Ingest;
using Streaming.Models.Training;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// The cluster's trust (issue 30), through real processes: PostgreSQL with <c>ssl=on</c> (its certificate made by
/// <c>cluster certs</c>, reached with <c>SSL Mode=VerifyFull</c>), a worker with mutual TLS and roots for paths, and
/// submitters with the cluster's certificate, with none, and with another CA's.
/// </summary>
[Collection(nameof(ProcessState))]
public class ClusterTrustTests : IAsyncLifetime
{
    private const string Password = "hunter2-never-logged";
    private readonly TempDir _tmp = new();
    private string Data => _tmp.Sub("data/u");
    private string Teacher => _tmp.Sub("data/teacher");

    public async ValueTask InitializeAsync()
    {
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), Data, new IngestOptions { Writer = new() { ShardSize = 16 } });
        await Trainer.RunAsync(new TrainOptions { Data = Data, Arch = "cnn-small", Out = Teacher, Images = 32 * 2, BatchSize = 32, Threads = 2 });
    }

    public ValueTask DisposeAsync()
    {
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }

    private string[] Score(string output, params string[] more) =>
        ["score", "--teacher", Teacher, "--data", Data, "--out", output, "--top-p", "5", "--batch", "16", "--threads", "1", "-k", "4", "-p", "2", .. more];

    private string[] Tls(string folder, string name) =>
        ["--tls-cert", Path.Combine(folder, name + ".pem"), "--tls-key", Path.Combine(folder, name + ".key"), "--tls-ca", Path.Combine(folder, "ca.pem")];

    [Fact]
    public async Task MutualTls_AdmitsOnlyTheClustersCa_RootsRefuseOtherPaths_AndNoPasswordIsWritten()
    {
        string certs = _tmp.Sub("certs"), other = _tmp.Sub("other");
        var (code, output) = await CliProcess.RunAsync("cluster", "certs", "--out", certs, "--names", "w0,submitter,postgres");
        Assert.True(code == 0, output);
        (code, output) = await CliProcess.RunAsync("cluster", "certs", "--out", other, "--names", "intruder");
        Assert.True(code == 0, output);
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(certs, "w0.key")));

        await using var pg = await TempPostgres.StartAsync(_tmp.Sub("pg"), (Path.Combine(certs, "postgres.pem"), Path.Combine(certs, "postgres.key")));
        // VerifyFull: the server's certificate must chain to the cluster's CA and name the host (localhost).
        string connFile = _tmp.Sub("conn.txt");
        File.WriteAllText(connFile, $"Host=localhost;Port={pg.Port};Username=postgres;Password={Password};Database=postgres;Timeout=5;SSL Mode=VerifyFull;Root Certificate={Path.Combine(certs, "ca.pem")}");
        string cluster = "file:" + connFile;
        string outRoot = _tmp.Sub("out");
        Directory.CreateDirectory(outRoot);
        int gateway = ClusterHosting.FreePort();
        var worker = CliProcess.StartLogged(_tmp.Sub("w0.log"), ["worker", "--cluster", cluster, .. Tls(certs, "w0"), "--name", "w0",
            "--silo-port", ClusterHosting.FreePort().ToString(CultureInfo.InvariantCulture), "--gateway-port", gateway.ToString(CultureInfo.InvariantCulture),
            "--decode-workers", "1", "--data-root", _tmp.Sub("data"), "--out-root", outRoot]);
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (!(File.Exists(_tmp.Sub("w0.log")) && File.ReadAllText(_tmp.Sub("w0.log")).Contains(" ready ", StringComparison.Ordinal)))
            {
                Assert.False(worker.HasExited, "the worker exited: " + File.ReadAllText(_tmp.Sub("w0.log")));
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(90), "the worker did not start: " + File.ReadAllText(_tmp.Sub("w0.log")));
                await Task.Delay(200);
            }

            // With the cluster's certificate: the job runs.
            (code, output) = await CliProcess.RunAsync(Score(Path.Combine(outRoot, "a"), ["--cluster", cluster, .. Tls(certs, "submitter")]));
            Assert.True(code == 0, output + File.ReadAllText(_tmp.Sub("w0.log")));
            Assert.True(File.Exists(Path.Combine(outRoot, "a", "selection", "selection.json")), output);

            // No certificate: the gateway refuses the connection; the client says so in one line, in seconds.
            (code, output) = await CliProcess.RunAsync(Score(Path.Combine(outRoot, "b"), "--cluster", cluster));
            Assert.Equal(3, code);
            Assert.Contains("error: the cluster's gateways refused this client: the TLS handshake failed (this client gave no --tls-cert", output);

            // Another CA's certificate: both sides refuse, each in one line naming the certificate.
            (code, output) = await CliProcess.RunAsync(Score(Path.Combine(outRoot, "c"), ["--cluster", cluster, .. Tls(other, "intruder")]));
            Assert.Equal(3, code);
            Assert.Contains("client refused a peer: its certificate (CN=w0", output);
            Assert.Contains("error: the cluster's gateways refused this client", output);
            Assert.Contains("silo refused a peer: its certificate (CN=intruder", File.ReadAllText(_tmp.Sub("w0.log")));
            Assert.False(Directory.Exists(Path.Combine(outRoot, "c", "scores")), "an intruder's job ran");

            // An output outside the worker's --out-root: the worker refuses the job, the status shows it, the submitter gives up.
            string elsewhere = _tmp.Sub("elsewhere");
            (code, output) = await CliProcess.RunAsync(Score(elsewhere, ["--cluster", cluster, .. Tls(certs, "submitter")]));
            Assert.Equal(3, code);
            Assert.Contains($"worker w0: its output {elsewhere} lies outside this worker's --out-root ({outRoot})", output);
            Assert.False(Directory.Exists(Path.Combine(elsewhere, "scores")), "the worker wrote outside its root");

            // A shard named with '..' is refused before it is submitted (the dataset's manifest allows plain names only;
            // the job grain and the workers check again, for clients of other making: ClusterTests).
            string evil = _tmp.Sub("data/evil");
            Directory.CreateDirectory(evil);
            var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(Data, "dataset.json")))!;
            foreach (var shard in manifest["shards"]!.AsArray()) shard!["file"] = "../u/" + (string)shard["file"]!;
            File.WriteAllText(Path.Combine(evil, "dataset.json"), manifest.ToJsonString());
            string[] evilScore = ["score", "--teacher", Teacher, "--data", evil, "--out", Path.Combine(outRoot, "e"), "--top-p", "5", "--threads", "1", "--cluster", cluster, .. Tls(certs, "submitter")];
            (code, output) = await CliProcess.RunAsync(evilScore);
            Assert.NotEqual(0, code);
            Assert.True(output.Contains("shard name '../u/shard-00000.parquet' must be a plain file name", StringComparison.Ordinal), output);

            // cluster status shows the refusal; the password is nowhere: logs, status, records.
            var (statusCode, status) = await CliProcess.RunAsync(["cluster", "status", "--cluster", cluster, .. Tls(certs, "submitter")]);
            Assert.True(statusCode == 0, status);
            Assert.Contains("refused: worker w0: its output", status);
            var written = new[] { output, status, File.ReadAllText(_tmp.Sub("w0.log")) }
                .Concat(Directory.EnumerateFiles(outRoot, "*.json", SearchOption.AllDirectories).Select(File.ReadAllText));
            Assert.DoesNotContain(written, text => text.Contains(Password, StringComparison.Ordinal));
        }
        finally
        {
            worker.Kill();
            await worker.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task AWorkerBeyondLoopback_WithoutTls_OrWithoutRoots_RefusesToStart_InOneLine()
    {
        var (code, output) = await CliProcess.RunAsync("worker", "--cluster", "localhost", "--advertise", "192.0.2.7",
            "--silo-port", ClusterHosting.FreePort().ToString(CultureInfo.InvariantCulture), "--gateway-port", ClusterHosting.FreePort().ToString(CultureInfo.InvariantCulture));
        Assert.Equal(3, code);
        Assert.Contains("error: worker: it would listen beyond loopback and advertise 192.0.2.7 without TLS", output);
        (code, output) = await CliProcess.RunAsync("worker", "--cluster", "localhost", "--advertise", "192.0.2.7", "--insecure",
            "--silo-port", ClusterHosting.FreePort().ToString(CultureInfo.InvariantCulture), "--gateway-port", ClusterHosting.FreePort().ToString(CultureInfo.InvariantCulture));
        Assert.Equal(3, code);
        Assert.Contains("give --data-root and --out-root", output);
    }

    [Fact]
    public void Roots_FollowLinksAndDotDot_AndNamesStayRelative()
    {
        string root = _tmp.Sub("root"), outside = _tmp.Sub("outside");
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(outside);
        Directory.CreateSymbolicLink(Path.Combine(root, "link"), outside);
        string[] roots = [root];
        Assert.Null(PathRoots.Refusal("data", Path.Combine(root, "a", "b"), roots, "--data-root"));
        Assert.Contains("lies outside", PathRoots.Refusal("data", Path.Combine(root, "..", "outside"), roots, "--data-root"));
        Assert.Contains($"(that is {outside})", PathRoots.Refusal("data", Path.Combine(root, "link"), roots, "--data-root"));
        Assert.Contains("lies outside", PathRoots.Refusal("data", root + "-sibling", roots, "--data-root"));
        Assert.Null(PathRoots.Refusal("data", "/anywhere", [], "--data-root"));
        Assert.Null(PathRoots.NameProblem("shard-00001.parquet"));
        Assert.Null(PathRoots.NameProblem("sub/shard..x.parquet"));
        Assert.Contains("contains '..'", PathRoots.NameProblem("../x.parquet"));
        Assert.Contains("absolute", PathRoots.NameProblem("/etc/passwd"));
    }
}
