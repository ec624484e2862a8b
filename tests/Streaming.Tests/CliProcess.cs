using System.Diagnostics;

namespace Streaming.Tests;

/// <summary>The real <c>streaming</c> command in a child process (streaming.dll is copied next to the tests), for kill -9 tests.</summary>
internal static class CliProcess
{
    public static Process Start(params string[] args)
    {
        var process = Launch(args);
        // Drain both pipes so a chatty child never blocks on a full one.
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        return process;
    }

    /// <summary>Starts the command with its stdout and stderr appended to <paramref name="log"/> (for long-running children whose output a failing test should show).</summary>
    public static Process StartLogged(string log, params string[] args) => StartLoggedUnder([], log, args);

    /// <summary>As <see cref="StartLogged"/>, run under another program (<paramref name="wrapper"/>, for example strace and its flags).</summary>
    public static Process StartLoggedUnder(string[] wrapper, string log, params string[] args)
    {
        var process = Launch(args, null, wrapper);
        var sink = TextWriter.Synchronized(new StreamWriter(log, append: true) { AutoFlush = true });
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) sink.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) sink.WriteLine(e.Data); };
        process.Exited += (_, _) => sink.Flush();
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Runs the command to its end; returns its exit code and its stdout followed by its stderr.</summary>
    public static Task<(int Code, string Output)> RunAsync(params string[] args) => RunAsync(null, args);

    /// <summary>As <see cref="RunAsync(string[])"/>, with these variables added to the child's environment.</summary>
    public static Task<(int Code, string Output)> RunAsync(IReadOnlyDictionary<string, string>? environment, string[] args) => RunUnderAsync([], environment, args);

    /// <summary>As <see cref="RunAsync(IReadOnlyDictionary{string, string}?, string[])"/>, run under another program (<paramref name="wrapper"/>).</summary>
    public static async Task<(int Code, string Output)> RunUnderAsync(string[] wrapper, IReadOnlyDictionary<string, string>? environment, string[] args)
    {
        var (code, stdout, stderr) = await RunToEndAsync(Launch(args, environment, wrapper), args);
        return (code, stdout + stderr);
    }

    /// <summary>A command that runs longer than this is killed (with its children) and the test fails: a hang never stalls the suite.</summary>
    public static readonly TimeSpan Limit = TimeSpan.FromMinutes(8);

    private static async Task<(int Code, string Stdout, string Stderr)> RunToEndAsync(Process process, string[] args)
    {
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var limit = new CancellationTokenSource(Limit);
            try
            {
                await process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                throw new TimeoutException($"streaming {string.Join(' ', args)} did not end within {Limit.TotalMinutes} minutes; killed. Its output:\n{await stdout}{await stderr}");
            }
            return (process.ExitCode, await stdout, await stderr);
        }
    }

    /// <summary>Runs the command to its end; returns its exit code, its stdout and its stderr apart (for --json).</summary>
    public static Task<(int Code, string Stdout, string Stderr)> RunSplitAsync(params string[] args) => RunToEndAsync(Launch(args), args);

    private static Process Launch(string[] args, IReadOnlyDictionary<string, string>? environment = null, string[]? wrapper = null)
    {
        string cli = Path.Combine(AppContext.BaseDirectory, "streaming.dll");
        if (!File.Exists(cli)) throw new FileNotFoundException($"{cli} not found next to the tests");
        wrapper ??= [];
        var psi = new ProcessStartInfo(wrapper.Length > 0 ? wrapper[0] : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var w in wrapper.Skip(1)) psi.ArgumentList.Add(w);
        if (wrapper.Length > 0) psi.ArgumentList.Add("dotnet");
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(cli);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        return Process.Start(psi)!;
    }
}
