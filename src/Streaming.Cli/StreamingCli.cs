using System.CommandLine;
using Streaming.Cli.Commands;
using Streaming.Cli.Shared;

namespace Streaming.Cli;

/// <summary>The <c>streaming</c> command line: every verb, built once.</summary>
public static class StreamingCli
{
    public static RootCommand CreateRoot() =>
        new("streaming: billion-scale semi-supervised learning for image classification (Yalniz et al., 2019).")
        {
            IngestCommand.Create(),
            SplitCommand.Create(),
            InspectCommand.Create(),
            TrainCommand.Create(),
            EvalCommand.Create(),
            ScoreCommand.Create(),
            SelectCommand.Create(),
            RunCommand.Create(),
            ReplayCommand.Create(),
            ReportCommand.Create(),
            DaemonCommand.Create(),
            ProfileCommand.Create(),
            EnvCommand.Create(),
            WorkerCommand.Create(),
            ClusterCommand.Create(),
            DedupCommand.Create(),
            FeaturesCommand.Create(),
            TagsCommand.Create(),
        };

    /// <summary>Parses and runs <paramref name="args"/>, returning the process exit code.</summary>
    public static Task<int> RunAsync(string[] args) => CommandRunner.InvokeAsync(CreateRoot(), args);
}
