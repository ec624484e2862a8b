namespace Streaming.Cli.Shared;

/// <summary>
/// Progress on stderr: a line rewritten in place on a terminal, or one line every few seconds when
/// stderr is a file or a pipe (so logs stay readable).
/// </summary>
public sealed class ConsoleProgress
{
    private readonly bool _interactive = !Console.IsErrorRedirected;
    private readonly TimeSpan _logInterval;
    private DateTime _lastLog = DateTime.MinValue;
    private int _lastLength;

    public ConsoleProgress(TimeSpan? logInterval = null) => _logInterval = logInterval ?? TimeSpan.FromSeconds(5);

    public void Report(string line)
    {
        lock (this)
        {
            if (_interactive)
            {
                string padded = line.Length < _lastLength ? line + new string(' ', _lastLength - line.Length) : line;
                Console.Error.Write("\r" + padded);
                _lastLength = line.Length;
            }
            else if (DateTime.UtcNow - _lastLog >= _logInterval)
            {
                Console.Error.WriteLine(line);
                _lastLog = DateTime.UtcNow;
            }
        }
    }

    /// <summary>Ends the in-place line so that what follows starts on a fresh one.</summary>
    public void Done()
    {
        lock (this)
        {
            if (_interactive && _lastLength > 0) Console.Error.WriteLine();
            _lastLength = 0;
        }
    }
}
