using System.Globalization;
using System.Text;
using Streaming.Engine.Pipelines;

namespace Streaming.Cli.Shared;

/// <summary>
/// A pipeline run's progress on stderr. On a terminal: the stages as a list kept at the bottom of the screen, each
/// marked pending, running, reused or done, the running one with its bar, images/s and ETA; log lines scroll above it.
/// In a log (stderr a file or a pipe): the log lines as they come and one plain progress line every few seconds, with
/// no escape codes.
/// </summary>
public sealed class StageListView : IProgress<StageProgress>
{
    private const int BarWidth = 24;
    private readonly TextWriter _writer;
    private readonly bool _interactive;
    private readonly TimeSpan _logInterval, _redrawInterval = TimeSpan.FromMilliseconds(100);
    private readonly Func<DateTime> _now;
    private readonly string[] _names;
    private readonly StageProgress?[] _states;
    private readonly DateTime _started;
    private readonly int _width;
    private int _drawn;
    private bool _finished;
    private DateTime _lastDraw = DateTime.MinValue, _lastLog = DateTime.MinValue;

    public StageListView(IReadOnlyList<string> stages, TextWriter? writer = null, bool? interactive = null, TimeSpan? logInterval = null,
        Func<DateTime>? now = null, int? width = null)
    {
        _names = [.. stages];
        _states = new StageProgress?[_names.Length];
        _writer = writer ?? Console.Error;
        _interactive = interactive ?? !Console.IsErrorRedirected;
        _logInterval = logInterval ?? TimeSpan.FromSeconds(5);
        _now = now ?? (() => DateTime.UtcNow);
        _started = _now();
        _width = width ?? TerminalWidth();
    }

    public void Report(StageProgress value)
    {
        lock (_states)
        {
            int i = value.Index - 1;
            if (i < 0 || i >= _states.Length || _finished) return;
            // A stage that ended stays ended, whatever report comes late.
            if (value.State == StageState.Running && _states[i]?.State is StageState.Done or StageState.Reused) return;
            bool changed = _states[i]?.State != value.State;
            _states[i] = value;
            var now = _now();
            if (_interactive)
            {
                // A change of state is drawn at once; a running stage's numbers at most ten times a second.
                if (changed || now - _lastDraw >= _redrawInterval) Redraw(now);
            }
            else if (value.State == StageState.Running && changed) _lastLog = now; // the log has just said that it started
            else if (value.State == StageState.Running && now - _lastLog >= _logInterval)
            {
                _writer.WriteLine("  " + value.Stage + ": " + Numbers(value));
                _lastLog = now;
            }
        }
    }

    /// <summary>A log line: above the list on a terminal, as it is in a log.</summary>
    public void Log(string line)
    {
        lock (_states)
        {
            if (!_interactive || _finished)
            {
                _writer.WriteLine(line);
                return;
            }
            Erase();
            _writer.WriteLine(line);
            Redraw(_now());
        }
    }

    /// <summary>Draws the list once more as it ended and leaves it on the screen, so that what follows comes below it.</summary>
    public void Finish()
    {
        lock (_states)
        {
            if (_finished) return;
            _finished = true;
            if (!_interactive) return;
            Redraw(_now());
            _drawn = 0;
        }
    }

    /// <summary>The list as it would be drawn now, one string a line (without escape codes).</summary>
    public IReadOnlyList<string> Lines()
    {
        lock (_states) return Render(_now());
    }

    private void Erase()
    {
        // To the start of the list's first line, then clear to the end of the screen.
        if (_drawn > 0) _writer.Write($"\u001b[{_drawn}F\u001b[J");
        _drawn = 0;
    }

    private void Redraw(DateTime now)
    {
        var lines = Render(now);
        var sb = new StringBuilder();
        if (_drawn > 0) sb.Append(CultureInfo.InvariantCulture, $"\u001b[{_drawn}F\u001b[J");
        // Each line is cut to the terminal's width: a wrapped line would throw the count of lines to go back over.
        foreach (var line in lines) sb.Append(line.Length < _width ? line : line[..(_width - 1)]).Append('\n');
        _writer.Write(sb.ToString());
        _writer.Flush();
        _drawn = lines.Count;
        _lastDraw = now;
    }

    private List<string> Render(DateTime now)
    {
        var inv = CultureInfo.InvariantCulture;
        int done = _states.Count(s => s?.State is StageState.Done or StageState.Reused);
        int pad = _names.Max(n => n.Length);
        var lines = new List<string> { string.Create(inv, $"stages: {done} of {_names.Length} done, {Clock(now - _started)} elapsed") };
        for (int i = 0; i < _names.Length; i++)
        {
            var s = _states[i];
            string name = _names[i].PadRight(pad);
            lines.Add(s?.State switch
            {
                StageState.Running => $"  > {name}  {Numbers(s)}",
                StageState.Done => $"  + {name}  {s.Summary ?? "done"}",
                StageState.Reused => $"  = {name}  {s.Summary ?? "reused"}",
                _ => $"  . {_names[i]}",
            });
        }
        return lines;
    }

    /// <summary>A running stage's bar (when its total is known), percentage, count, images/s, ETA and detail.</summary>
    internal static string Numbers(StageProgress s)
    {
        var inv = CultureInfo.InvariantCulture;
        var parts = new List<string>();
        if (s.Fraction is double f)
        {
            f = Math.Clamp(f, 0, 1);
            int full = (int)Math.Round(f * BarWidth);
            parts.Add("[" + new string('#', full) + new string('-', BarWidth - full) + "]");
            parts.Add(string.Create(inv, $"{100 * f,5:F1}%"));
        }
        else if (s.Items is long n) parts.Add(string.Create(inv, $"{n:N0} images"));
        if (s.ImagesPerSecond is double r && r > 0) parts.Add(string.Create(inv, $"{r:N0} images/s"));
        if (s.Eta is TimeSpan eta) parts.Add("ETA " + Clock(eta));
        if (s.Detail is string d) parts.Add(d);
        return parts.Count == 0 ? "running" : string.Join("  ", parts);
    }

    private static string Clock(TimeSpan t) =>
        t.TotalHours >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}:{t.Minutes:D2}:{t.Seconds:D2}")
            : string.Create(CultureInfo.InvariantCulture, $"{t.Minutes:D2}:{t.Seconds:D2}");

    private static int TerminalWidth()
    {
        try
        {
            return Console.IsErrorRedirected || Console.WindowWidth <= 0 ? 120 : Console.WindowWidth;
        }
        catch (IOException)
        {
            return 120;
        }
    }
}
