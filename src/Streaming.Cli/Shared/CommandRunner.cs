using System.CommandLine;
using Streaming.Core;

namespace Streaming.Cli.Shared;

/// <summary>Runs a parsed command line and maps failures to one clear line and an <see cref="ExitCode"/>.</summary>
public static class CommandRunner
{
    public static async Task<int> InvokeAsync(RootCommand root, string[] args)
    {
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors) Console.Error.WriteLine($"error: {error.Message}");
            Console.Error.WriteLine("Run with --help for usage.");
            return (int)ExitCode.Usage;
        }
        try
        {
            // Our own handler below turns errors into one line and an exit code, so System.CommandLine must let them through.
            var configuration = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
            // The daemon and the worker are generic hosts: it handles SIGTERM and SIGINT itself (drain, checkpoint, exit 0 within
            // its shutdown timeout), which System.CommandLine's handler would cut short after two seconds.
            if (parsed.CommandResult.Command.Name is "daemon" or "worker") configuration.ProcessTerminationTimeout = null;
            return await parsed.InvokeAsync(configuration).ConfigureAwait(false);
        }
        catch (Streaming.Core.Options.OptionException e)
        {
            // In the words of where the value came from: a flag, or a key of the verb's file (daemon config, manifest).
            bool fromFile = parsed.CommandResult.Command.Name is "daemon" or "run" or "replay";
            Console.Error.WriteLine($"error: {(fromFile ? e.Message : e.ForCommandLine)}");
            return (int)ExitCode.Usage;
        }
        catch (StreamingException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return (int)ExitCode.BadInput;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled");
            return (int)ExitCode.Cancelled;
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return (int)ExitCode.Usage;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: unexpected {e.GetType().Name}: {e.Message}");
            if (Environment.GetEnvironmentVariable("STREAMING_DEBUG") == "1") Console.Error.WriteLine(e);
            else Console.Error.WriteLine("(set STREAMING_DEBUG=1 for the stack trace, and please report it)");
            return (int)ExitCode.InternalError;
        }
    }
}
