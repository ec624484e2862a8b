using Streaming.Core;
using Streaming.Core.Compute;
using Streaming.Core.Options;
using Streaming.Models.Zoo;
using TorchSharp;

namespace Streaming.Models.Compute;

/// <summary>
/// The kernels libtorch uses in this process: pinning them (<see cref="PinIsa"/>, <see cref="PinLike"/>), the one owner of
/// the process's compute settings (<see cref="Configure"/> for the defaults, <see cref="AcquireAsync"/> for a job's hold
/// on them, <see cref="OnThisThread"/> before a job's tensor work), and the record of what is in use
/// (<see cref="Current"/>), which run records, scoring.json and training configs carry.
/// </summary>
public static class Kernels
{
    private static readonly Lock Gate = new();
    private static Pin? s_pin;

    /// <summary>The settings one pin applies (null: native, nothing set).</summary>
    private sealed record Pin(string Requested, KernelIsa Onednn, string Aten, string? MklBranch);

    /// <summary>
    /// Fixes the kernels libtorch may use, for the rest of the process: oneDNN's highest ISA (<c>ONEDNN_MAX_CPU_ISA</c>),
    /// ATen's vectorized kernels (<c>ATEN_CPU_CAPABILITY</c>) and MKL's code path (<c>MKL_CBWR</c>, see
    /// <see cref="KernelIsas.MklBranch"/>). Each library reads
    /// its setting once, on first use, so this must run before the first tensor operation; it checks that ATen took the
    /// setting and says so in one line when it could not. <see cref="KernelIsa.Native"/> sets nothing.
    /// </summary>
    /// <exception cref="StreamingException">This CPU lacks the ISA, or libtorch has already chosen its kernels.</exception>
    public static void PinIsa(KernelIsa isa, string what = "--isa")
    {
        if (isa == KernelIsa.Native) return;
        var cpu = CpuInfo.Current;
        if (!KernelIsas.Supports(cpu.Flags, isa))
            throw new StreamingException($"{what} {isa.Name()}: this CPU ({cpu.Model}) has at most {cpu.BestIsa.Name()}");
        Apply(new Pin(isa.Name(), isa, isa.AtenCapability(), isa.MklBranch()), what);
    }

    /// <summary>
    /// The process's default compute settings, for the jobs that ask for none: the kernel ISA (see <see cref="PinIsa"/>,
    /// fixed for the process), the memory layout and libtorch's intra-op threads (0 or null: all cores). Every verb comes
    /// through here before its first tensor operation; a job then holds the settings it runs with through
    /// <see cref="AcquireAsync"/>, so that nothing changes them under it.
    /// </summary>
    /// <exception cref="StreamingException">A job holds other settings now.</exception>
    public static void Configure(KernelIsa isa, int? threads, bool channelsLast = true, string what = "--isa")
    {
        PinIsa(isa, what);
        var wanted = new ComputeSettings(Knobs.ResolveThreads(threads), channelsLast);
        lock (Gate)
        {
            if (s_held is not null && s_held != wanted)
                throw new StreamingException($"{what}: a job in this process runs with {s_held} now; these settings ({wanted}) are taken once it ends");
            s_defaults = wanted;
            MemoryFormat.ChannelsLast = channelsLast;
        }
        OnThisThread();
    }

    // The settings every lease holds now (null: no job runs), how many hold them, and the jobs waiting for others.
    private static ComputeSettings? s_held;
    private static int s_holders;
    private static ComputeSettings? s_defaults;
    private static readonly LinkedList<(ComputeSettings Settings, TaskCompletionSource<bool> Granted)> s_waiting = new();
    private static readonly AsyncLocal<ComputeLease?> s_flow = new();

    /// <summary>
    /// Holds the process's compute settings for one job: <paramref name="threads"/> (0 or null: the process's default, set by
    /// <see cref="Configure"/>, else all cores) and the layout (null: the default). libtorch keeps its thread count per
    /// native thread and its layout per process, so two jobs that want different settings cannot run at once: a job
    /// whose settings differ from those held waits until every holder has let go (in turn, first come first served);
    /// one that agrees shares them. A job started inside another (a pipeline's training) shares its settings, and is
    /// refused at once when it asks for others, since waiting for its own caller would never end.
    /// </summary>
    public static Task<ComputeLease> AcquireAsync(int? threads = null, bool? channelsLast = null, CancellationToken cancellationToken = default)
    {
        // Not an async method: the flow's lease set here stays in the caller's context (an async method's changes to
        // an AsyncLocal end with it), so the jobs the caller starts see it, and Dispose puts the outer one back.
        var wanted = Wanted(threads, channelsLast);
        var outer = s_flow.Value is { Released: false } held ? held : null;
        if (outer is not null && outer.Settings != wanted)
            return Task.FromException<ComputeLease>(new StreamingException(
                $"this job runs inside one that holds {outer.Settings}; it cannot run with {wanted} (libtorch's settings belong to the process)"));
        var lease = new ComputeLease(wanted, outer);
        s_flow.Value = lease;
        return GrantAsync(lease, cancellationToken);
    }

    private static async Task<ComputeLease> GrantAsync(ComputeLease lease, CancellationToken cancellationToken)
    {
        var wanted = lease.Settings;
        TaskCompletionSource<bool>? wait = null;
        LinkedListNode<(ComputeSettings, TaskCompletionSource<bool>)>? node = null;
        lock (Gate)
        {
            if (lease.Outer is not null || (s_waiting.Count == 0 && (s_held is null || s_held == wanted)))
            {
                Take(wanted);
            }
            else
            {
                wait = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                node = s_waiting.AddLast((wanted, wait));
            }
        }
        if (wait is not null)
        {
            using var cancel = cancellationToken.Register(() =>
            {
                lock (Gate)
                {
                    if (node!.List is null) return; // granted already
                    s_waiting.Remove(node);
                }
                wait.TrySetCanceled(cancellationToken);
            });
            try
            {
                await wait.Task.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                lease.Abandon();
                throw;
            }
        }
        lease.Granted();
        OnThisThread();
        return lease;
    }

    private static ComputeSettings Wanted(int? threads, bool? channelsLast)
    {
        ComputeSettings? defaults;
        lock (Gate) defaults = s_defaults;
        int n = threads is null or 0 ? defaults?.Threads ?? Knobs.ResolveThreads(null) : Knobs.ResolveThreads(threads);
        return new ComputeSettings(n, channelsLast ?? defaults?.ChannelsLast ?? MemoryFormat.ChannelsLast);
    }

    /// <summary>Under <see cref="Gate"/>: one more holder of <paramref name="settings"/>, applied if they are new.</summary>
    private static void Take(ComputeSettings settings)
    {
        if (s_held is null)
        {
            s_held = settings;
            MemoryFormat.ChannelsLast = settings.ChannelsLast;
            torch.set_num_threads(settings.Threads); // the default for native threads that libtorch has not seen yet
        }
        s_holders++;
    }

    /// <summary>Under <see cref="Gate"/>: one holder fewer; when none is left, the waiting jobs at the head that agree are let in.</summary>
    private static void Drop()
    {
        if (--s_holders > 0) return;
        s_held = null;
        while (s_waiting.First is { } first && (s_held is null || s_held == first.Value.Settings))
        {
            s_waiting.RemoveFirst();
            Take(first.Value.Settings);
            first.Value.Granted.TrySetResult(true);
        }
    }

    /// <summary>A granted lease lets go; the flow's lease goes back to the one it was nested in.</summary>
    internal static void Release(ComputeLease lease)
    {
        if (lease.IsGranted) lock (Gate) Drop();
        if (s_flow.Value == lease) s_flow.Value = lease.Outer;
    }

    /// <summary>
    /// Gives the calling thread the thread count of the job that holds the settings (or the process's default). libtorch
    /// (OpenMP and MKL) keeps the intra-op thread count per native thread, and an async job's work moves between pool
    /// threads: whatever runs tensor operations for a job (a training step, an inference batch) calls this first, so each
    /// runs with the job's threads, whichever thread it lands on. Cheap: one check when nothing changes.
    /// </summary>
    public static void OnThisThread()
    {
        ComputeSettings? settings;
        lock (Gate) settings = s_held ?? s_defaults;
        if (settings is not null && torch.get_num_threads() != settings.Threads) torch.set_num_threads(settings.Threads);
    }

    /// <summary>The settings held now by a running job, or null.</summary>
    public static ComputeSettings? Held
    {
        get
        {
            lock (Gate) return s_held;
        }
    }

    /// <summary>
    /// Pins the kernels a record names (a replay): oneDNN's ISA and ATen's kernels as they were used, and MKL's path
    /// as it was set. Returns null when this CPU can run them, or the one line that says why not.
    /// </summary>
    public static string? PinLike(ComputeEnvironment recorded, string what)
    {
        if (!KernelIsas.TryParse(recorded.OnednnIsa, out var onednn) || onednn == KernelIsa.Native)
            return $"{what}: names an unknown kernel ISA '{recorded.OnednnIsa}'";
        var cpu = CpuInfo.Current;
        if (!KernelIsas.Supports(cpu.Flags, onednn))
            return $"{what}: ran on {onednn.Name()} kernels ({recorded.Cpu}), and this CPU ({cpu.Model}) has at most {cpu.BestIsa.Name()}";
        if (recorded.AtenCpuCapability is not ("avx2" or "avx512"))
            return $"{what}: names ATen kernels '{recorded.AtenCpuCapability}', which cannot be pinned";
        Apply(new Pin(recorded.Isa, onednn, recorded.AtenCpuCapability, recorded.MklCbwr is "off" or "auto" ? null : recorded.MklCbwr), what);
        return null;
    }

    private static void Apply(Pin pin, string what)
    {
        lock (Gate)
        {
            if (s_pin is not null && s_pin != pin)
                throw new StreamingException($"{what} {pin.Requested}: this process already pinned {s_pin.Requested} kernels, and libtorch keeps its first choice");
            NativeSettings.Set("ONEDNN_MAX_CPU_ISA", pin.Onednn.OnednnName());
            NativeSettings.Set("ATEN_CPU_CAPABILITY", pin.Aten);
            if (pin.MklBranch is string branch) NativeSettings.Set("MKL_CBWR", branch);
            string? aten = NativeSettings.AtenCpuCapability();
            if (aten is not null && aten != pin.Aten)
                throw new StreamingException($"{what} {pin.Requested}: libtorch already chose {aten} kernels in this process; the ISA must be set before the first tensor operation");
            s_pin = pin;
        }
    }

    /// <summary>The kernels this process uses now, for a record. Call it after libtorch has been used (or it will be, here).</summary>
    public static ComputeEnvironment Current(int? threads = null)
    {
        var cpu = CpuInfo.Current;
        Pin? pin;
        lock (Gate) pin = s_pin;
        KernelIsa onednn = pin?.Onednn ?? Cap(cpu.BestIsa, Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") ?? Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA"));
        string cbwr = Environment.GetEnvironmentVariable("MKL_CBWR") is { Length: > 0 } c ? c : "off";
        return new ComputeEnvironment
        {
            Isa = pin?.Requested ?? "native",
            OnednnIsa = onednn.Name(),
            AtenCpuCapability = NativeSettings.AtenCpuCapability() ?? "unknown",
            MklCbwr = cbwr,
            Mkl = NativeSettings.MklVersion(),
            Cpu = cpu.Family.Length > 0 ? $"{cpu.Model} ({cpu.Family})" : cpu.Model,
            CpuVendor = cpu.Vendor,
            CpuFlags = cpu.RelevantFlags,
            CpuCaches = cpu.Caches,
            Libtorch = torch.__version__,
            TorchSharp = typeof(torch).Assembly.GetName().Version?.ToString() ?? "",
            Backend = TorchDevice.Backend,
            Threads = threads ?? torch.get_num_threads(),
            ChannelsLast = MemoryFormat.ChannelsLast,
        };
    }

    /// <summary>The CPU's best level, lowered to a user's own <c>ONEDNN_MAX_CPU_ISA</c> when one is set.</summary>
    private static KernelIsa Cap(KernelIsa best, string? env) =>
        env is { Length: > 0 } && !string.Equals(env, "ALL", StringComparison.OrdinalIgnoreCase) && KernelIsas.TryParse(env, out var cap) && cap < best ? cap : best;

    /// <summary>
    /// What a cached result computed with libtorch depends on, besides its own parameters and threads: the kernels,
    /// the libtorch version, the layout and the zoo's revision. A stage cache keyed on it is never reused across them.
    /// </summary>
    public static string KernelKey(ComputeEnvironment e) =>
        $"onednn {e.OnednnIsa}, aten {e.AtenCpuCapability}, mkl {e.MklCbwr}, libtorch {e.Libtorch} {e.Backend}, channels-last {(e.ChannelsLast ? "on" : "off")}, zoo {ModelZoo.Revision}";

}
