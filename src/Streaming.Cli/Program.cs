using System.CommandLine;
using Streaming.Cli;
using Streaming.Cli.Commands;

var root = new RootCommand("streaming: billion-scale semi-supervised learning for image classification (Yalniz et al., 2019).")
{
    IngestCommand.Create(),
    SplitCommand.Create(),
    InspectCommand.Create(),
};
return await CommandRunner.InvokeAsync(root, args);
