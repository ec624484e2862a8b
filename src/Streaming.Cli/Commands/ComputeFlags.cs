using System.CommandLine;
using Streaming.Cli.Shared;
using Streaming.Core.Compute;
using Streaming.Core.Options;
using Streaming.Models.Compute;

namespace Streaming.Cli.Commands;

/// <summary>The compute options of every verb that runs libtorch (--threads, --device, --isa, --channels-last), from <see cref="Knobs"/>.</summary>
internal sealed class ComputeFlags
{
    public Option<int> Threads { get; } = KnobOption.Create<int>(Knobs.Threads);
    public Option<string> Device { get; } = KnobOption.Create<string>(Knobs.Device);
    public Option<string> Isa { get; } = KnobOption.Create<string>(Knobs.Isa);
    public Option<bool> ChannelsLast { get; } = KnobOption.Create<bool>(Knobs.ChannelsLast);

    public IEnumerable<Option> All => [Threads, Device, Isa, ChannelsLast];

    public void AddTo(Command command)
    {
        foreach (var option in All) command.Options.Add(option);
    }

    /// <summary>Pins the ISA, sets the layout and the threads (<paramref name="threads"/>: a count the verb resolved otherwise), before the verb's first tensor operation.</summary>
    public void Apply(ParseResult parse, int? threads = null) =>
        Streaming.Models.Compute.Kernels.Configure(KernelIsas.Parse(parse.GetValue(Isa)!), threads ?? parse.GetValue(Threads), parse.GetValue(ChannelsLast));

    /// <summary>The compute settings the flags give.</summary>
    public ComputeSpec Bind(ParseResult parse) => new()
    {
        Threads = parse.GetValue(Threads),
        Device = parse.GetValue(Device)!,
        Isa = KernelIsas.Parse(parse.GetValue(Isa)!),
        ChannelsLast = parse.GetValue(ChannelsLast),
    };

    /// <summary>The thread count as a run records it (0: all cores, resolved).</summary>
    public int ThreadCount(ParseResult parse) => Knobs.ResolveThreads(parse.GetValue(Threads));
}
