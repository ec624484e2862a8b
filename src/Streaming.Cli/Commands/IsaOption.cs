using System.CommandLine;
using Streaming.Models.Compute;

namespace Streaming.Cli.Commands;

/// <summary>The <c>--isa</c> option of every verb that runs libtorch, and the pin it asks for.</summary>
internal static class IsaOption
{
    public static Option<string?> Create() => new("--isa")
    {
        Description = $"Kernel ISA: native (the CPU's best, the default) or a pinned level ({string.Join(", ", KernelIsas.Names.Skip(1))}) under which results are bit-identical on any CPU that has it (docs/cpu-kernels.md)",
    };

    /// <summary>Pins the ISA the option names, before the verb's first tensor operation.</summary>
    public static void Pin(ParseResult parse, Option<string?> option)
    {
        if (parse.GetValue(option) is string isa) ComputeEnvironment.PinIsa(KernelIsas.Parse(isa));
    }
}
