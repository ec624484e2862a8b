using System.Diagnostics;
using System.Globalization;

namespace Streaming.Tests;

/// <summary>
/// A PostgreSQL server of its own for a test: initdb in a temporary folder, listening on 127.0.0.1 and a free port.
/// initdb refuses to run as root, so as root the server runs as the <c>postgres</c> user (runuser). CI installs
/// Debian's postgresql package; the newest server under /usr/lib/postgresql is used.
/// </summary>
internal sealed class TempPostgres : IAsyncDisposable
{
    private readonly string _folder, _bin;
    private string _extra = "";
    public int Port { get; }
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Timeout=5;Command Timeout=30";

    private TempPostgres(string folder, string bin, int port)
    {
        _folder = folder;
        _bin = bin;
        Port = port;
    }

    public static string? FindServer() => Directory.Exists("/usr/lib/postgresql")
        ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(b => File.Exists(Path.Combine(b, "initdb")))
            .OrderByDescending(b => int.TryParse(Path.GetFileName(Path.GetDirectoryName(b)), out int v) ? v : 0).FirstOrDefault()
        : null;

    /// <summary>
    /// Starts a server; with <paramref name="tls"/> (a certificate and its key, PEM) it takes <c>ssl=on</c> with them,
    /// copied into its folder and owned by the server's user, as PostgreSQL requires of a key.
    /// </summary>
    public static async Task<TempPostgres> StartAsync(string folder, (string Cert, string Key)? tls = null)
    {
        Prerequisite.PostgreSql.Require();
        string bin = FindServer()!;
        Directory.CreateDirectory(folder);
        if (Environment.UserName == "root") await RunAsync("chown", folder, ["postgres:postgres", folder]);
        var pg = new TempPostgres(folder, bin, Streaming.Cluster.ClusterHosting.FreePort());
        await pg.AsPostgresAsync("initdb", ["-D", Path.Combine(folder, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"]);
        if (tls is var (cert, key))
        {
            string c = Path.Combine(folder, "server.pem"), k = Path.Combine(folder, "server.key");
            File.Copy(cert, c, overwrite: true);
            File.Copy(key, k, overwrite: true);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(k, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            if (Environment.UserName == "root") await RunAsync("chown", folder, ["postgres:postgres", c, k]);
            pg._extra = $" -c ssl=on -c ssl_cert_file={c} -c ssl_key_file={k}";
        }
        await pg.StartServerAsync();
        return pg;
    }

    private Task StartServerAsync() => AsPostgresAsync("pg_ctl", ["-D", Path.Combine(_folder, "data"), "-l", Path.Combine(_folder, "server.log"), "-w", "-t", "60",
        "-o", string.Create(CultureInfo.InvariantCulture, $"-p {Port} -k {_folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200{_extra}"), "start"]);

    public Task StopServerAsync() => AsPostgresAsync("pg_ctl", ["-D", Path.Combine(_folder, "data"), "-m", "fast", "-w", "stop"]);

    /// <summary>Stops the server and starts it again on the same port (clients must reconnect).</summary>
    public async Task RestartAsync()
    {
        await StopServerAsync();
        await StartServerAsync();
    }

    private Task AsPostgresAsync(string tool, string[] args) => Environment.UserName == "root"
        ? RunAsync("runuser", _folder, ["-u", "postgres", "--", Path.Combine(_bin, tool), .. args])
        : RunAsync(Path.Combine(_bin, tool), _folder, args);

    private static async Task RunAsync(string file, string directory, string[] args)
    {
        var info = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = directory };
        using var p = Process.Start(info)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: exit {p.ExitCode}: {await output}{await error}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopServerAsync();
        }
        catch (InvalidOperationException)
        {
        }
    }
}
