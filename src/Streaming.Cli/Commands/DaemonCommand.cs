using System.CommandLine;
using Streaming.Cli.Shared;
using Streaming.Core.Options;
using Streaming.Daemon;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming daemon</c>: score new unlabeled data as it arrives, keep D-hat current, survive crashes.</summary>
public static class DaemonCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config", "-c") { Description = "daemon.yaml (see deploy/daemon.yaml); flags below override it" };
        var teacher = new Option<string?>("--teacher", "-t") { Description = "Teacher model (config key: teacher)" };
        var inbox = new Option<string?>("--inbox") { Description = "Folder to watch for shards, image folders, tars and shard lists (inbox)" };
        var state = new Option<string?>("--state") { Description = "The daemon's own folder: checkpoints, scores, snapshots, quarantine (state)" };
        var k = new Option<int?>("-k") { Description = "K: images kept a class (scoring.k)" };
        var p = new Option<int?>("-p") { Description = "P: classes per image that count (scoring.p)" };
        var topP = new Option<int?>("--top-p") { Description = "P': classes kept per image in the score shards (scoring.top_p)" };
        var listen = new Option<string?>("--listen") { Description = "HTTP address host:port, or 'off' (http.listen; default 127.0.0.1:8617)" };
        var logFormat = new Option<string?>("--log-format") { Description = "text or json (log.format)" };
        var sets = new Option<string[]>("--set") { Description = "Any config key, e.g. --set snapshot.every_shards=50 (repeatable)" };
        var describe = new Option<bool>("--describe-config") { Description = "List every config key with its default and exit" };
        var isa = KnobOption.Create<string>(Knobs.Isa, description: Knobs.Isa.Help + " (compute.isa)", withDefault: false);
        var command = new Command("daemon", "Run the ingestion daemon: watch an inbox, score new shards, keep per-class heaps and publish D-hat snapshots; serves /metrics on localhost.")
        {
            config, teacher, inbox, state, k, p, topP, listen, logFormat, sets, describe, isa,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (parse.GetValue(describe))
            {
                foreach (var line in DaemonConfig.Schema.Describe()) Console.WriteLine(line);
                return (int)ExitCode.Ok;
            }
            var overrides = new List<string>();
            void Flag(string key, object? value)
            {
                if (value is not null) overrides.Add($"{key}={value}");
            }
            Flag("teacher", parse.GetValue(teacher));
            Flag("inbox", parse.GetValue(inbox));
            Flag("state", parse.GetValue(state));
            Flag("scoring.k", parse.GetValue(k));
            Flag("scoring.p", parse.GetValue(p));
            Flag("scoring.top_p", parse.GetValue(topP));
            Flag("http.listen", parse.GetValue(listen));
            Flag("log.format", parse.GetValue(logFormat));
            Flag("compute.isa", parse.GetValue(isa));
            overrides.AddRange(parse.GetValue(sets) ?? []);
            var resolved = DaemonConfig.Load(parse.GetValue(config), overrides);
            // The generic host owns SIGTERM/SIGINT (see CommandRunner); the token here never fires.
            return await DaemonHost.RunAsync(resolved, CancellationToken.None);
        });
        return command;
    }
}
