Streaming.Cli.NativeEnvironment.PreferPassiveOpenMp();
if (args.Length > 0 && args[0] == "daemon") Streaming.Cli.NativeEnvironment.LimitMallocArenas();
return await Streaming.Cli.StreamingCli.RunAsync(args);
