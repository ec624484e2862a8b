return await Streaming.Cli.StreamingCli.RunAsync(args);
