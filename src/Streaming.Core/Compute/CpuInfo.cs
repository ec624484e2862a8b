using System.Globalization;

namespace Streaming.Core.Compute;

/// <summary>The CPU as Linux describes it in /proc/cpuinfo: model, vendor, family and the instruction-set flags.</summary>
public sealed record CpuInfo(string Model, string Vendor, string Family, IReadOnlySet<string> Flags, string Caches)
{
    private static readonly Lazy<CpuInfo> Local = new(() => Read("/proc/cpuinfo", "/sys/devices/system/cpu/cpu0/cache"));

    /// <summary>This machine's CPU.</summary>
    public static CpuInfo Current => Local.Value;

    /// <summary>The highest kernel ISA level this CPU has.</summary>
    public KernelIsa BestIsa => KernelIsas.Best(Flags);

    /// <summary>Reads the first processor of a cpuinfo file, and the cache sizes the kernel reports (libraries size their blocks by them).</summary>
    public static CpuInfo Read(string cpuinfo, string cacheFolder)
    {
        string model = "unknown", vendor = "unknown", family = "", modelNo = "";
        var flags = new HashSet<string>(StringComparer.Ordinal);
        if (File.Exists(cpuinfo))
        {
            foreach (var line in File.ReadLines(cpuinfo))
            {
                if (line.Length == 0) break; // the first processor is enough
                int colon = line.IndexOf(':');
                if (colon < 0) continue;
                string key = line[..colon].Trim(), value = line[(colon + 1)..].Trim();
                switch (key)
                {
                    case "model name": model = value; break;
                    case "vendor_id": vendor = value; break;
                    case "cpu family": family = value; break;
                    case "model": modelNo = value; break;
                    case "flags": flags.UnionWith(value.Split(' ', StringSplitOptions.RemoveEmptyEntries)); break;
                }
            }
        }
        string caches = "not reported";
        if (Directory.Exists(cacheFolder))
        {
            var parts = Directory.GetDirectories(cacheFolder, "index*").Order(StringComparer.Ordinal).Select(dir =>
            {
                string Read(string f) => File.Exists(Path.Combine(dir, f)) ? File.ReadAllText(Path.Combine(dir, f)).Trim() : "?";
                string type = Read("type");
                return $"L{Read("level")}{(type == "Data" ? "d" : type == "Instruction" ? "i" : "")} {Read("size")}";
            }).ToList();
            if (parts.Count > 0) caches = string.Join(", ", parts);
        }
        string fam = family.Length > 0 ? string.Create(CultureInfo.InvariantCulture, $"family {family} model {modelNo}") : "";
        return new CpuInfo(model, vendor, fam, flags, caches);
    }

    /// <summary>The flags that decide kernel choice, in a fixed order, those this CPU has.</summary>
    public IReadOnlyList<string> RelevantFlags => KernelIsas.RelevantFlags.Where(Flags.Contains).ToList();
}
