Streaming.Cli.NativeEnvironment.PreferPassiveOpenMp();
return await Streaming.Cli.StreamingCli.RunAsync(args);
