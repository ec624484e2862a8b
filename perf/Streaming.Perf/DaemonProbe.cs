using System.Globalization;

namespace Streaming.Perf;

/// <summary>What the soaks read of a running daemon: its RSS from /proc and its /metrics samples.</summary>
internal static class DaemonProbe
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Resident set size in bytes; 0 when the process is gone.</summary>
    public static long Rss(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], Inv) * 1024;
        }
        catch (IOException)
        {
        }
        return 0;
    }

    /// <summary>Every sample of /metrics, by name and labels.</summary>
    public static async Task<Dictionary<string, double>> MetricsAsync(HttpClient http)
    {
        var result = new Dictionary<string, double>();
        foreach (var line in (await http.GetStringAsync("/metrics")).Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            int space = line.LastIndexOf(' ');
            result[line[..space]] = line[(space + 1)..] switch { "+Inf" => double.PositiveInfinity, var v => double.Parse(v, Inv) };
        }
        return result;
    }
}
