using System.Globalization;

namespace Streaming.Core;

/// <summary>This process's resources, cheap enough to read ten times a second.</summary>
public static class ProcessStats
{
    /// <summary>Resident set size, from /proc/self/statm where there is one (what the kernel counts, native memory included).</summary>
    public static long ResidentBytes()
    {
        try
        {
            var fields = File.ReadAllText("/proc/self/statm").Split(' ');
            return long.Parse(fields[1], CultureInfo.InvariantCulture) * Environment.SystemPageSize;
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException or UnauthorizedAccessException)
        {
            return Environment.WorkingSet;
        }
    }

    /// <summary>CPU time used by the process so far (user + system), in seconds.</summary>
    public static double CpuSeconds() => Environment.CpuUsage.TotalTime.TotalSeconds;

    /// <summary>Time the garbage collector has paused the process so far, in seconds.</summary>
    public static double GcPauseSeconds() => GC.GetTotalPauseDuration().TotalSeconds;
}
