using Streaming.Core.Compute;
using Streaming.Core.Scoring;
using Streaming.Core.Selection;
using Streaming.Models.Compute;
using Streaming.Models.IO;
using Streaming.Models.Teachers;

namespace Streaming.Engine.Scoring;

/// <summary>Who opens a session's teacher and selector, when not the defaults.</summary>
public sealed record ScoringSetupOptions
{
    /// <summary>Opens the teacher (default: the file, <see cref="FileTeacherSource"/>).</summary>
    public ITeacherSource Teachers { get; init; } = FileTeacherSource.Instance;

    /// <summary>For a teacher that does not carry its own spec (a .pt state dict, an ONNX model without metadata).</summary>
    public ModelSpec? TeacherSpec { get; init; }

    /// <summary>
    /// The heaps rows are offered to: null makes a fresh one when the spec has K (the daemon brings its own, recovered from
    /// its checkpoint); <see cref="NoSelection"/> makes none even with K (a worker's partial is the job's).
    /// </summary>
    public Selector? Selector { get; init; }

    /// <summary>No selector at all, whatever K says.</summary>
    public bool NoSelection { get; init; }
}

/// <summary>
/// What every scoring shares before its graph: the process's kernels and threads held for it (a lease, see
/// <see cref="Kernels.AcquireAsync"/>), the teacher opened, P' clamped to the teacher's classes, and the selector. A
/// <see cref="ScoringSession{TTag}"/> runs a graph on it; a cluster client that scores nothing here (the daemon's
/// cluster mode, a submitter) uses it alone. Disposing closes the teacher and lets go of the kernels.
/// </summary>
public sealed class ScoringSetup : IDisposable
{
    private readonly ComputeLease _compute;

    private ScoringSetup(ScoringSpec spec, string teacherFile, ITeacher teacher, ComputeLease compute, Selector? selector)
    {
        Spec = spec;
        TeacherFile = teacherFile;
        Teacher = teacher;
        _compute = compute;
        TopP = Math.Min(spec.TopP, teacher.Spec.NumClasses);
        Selector = selector;
        Compute = Kernels.Current(compute.Threads);
    }

    public ScoringSpec Spec { get; }

    /// <summary>The teacher's file (a run folder resolved to its model), as scoring.json names and hashes it.</summary>
    public string TeacherFile { get; }

    public ITeacher Teacher { get; }

    /// <summary>P' as the scores keep it: the spec's, or the teacher's class count when that is smaller.</summary>
    public int TopP { get; }

    public IReadOnlyList<string> Classes => Teacher.Spec.Classes;

    public Selector? Selector { get; }

    /// <summary>The kernels and threads this scoring runs on, for records.</summary>
    public ComputeEnvironment Compute { get; }

    public int Threads => _compute.Threads;

    /// <summary>Holds the kernels, opens the teacher and makes the selector. The spec is validated here, once, whoever bound it.</summary>
    public static async Task<ScoringSetup> OpenAsync(ScoringSpec spec, string teacher, ScoringSetupOptions? options = null, CancellationToken cancellationToken = default)
    {
        spec = spec.Validated();
        options ??= new ScoringSetupOptions();
        Kernels.PinIsa(spec.Compute.Isa, "compute.isa");
        var compute = await Kernels.AcquireAsync(spec.Compute.Threads, spec.Compute.ChannelsLast, cancellationToken).ConfigureAwait(false);
        try
        {
            string file = Models.Teachers.Teachers.Resolve(teacher);
            var opened = options.Teachers.Open(file, spec.Compute.Device, compute.Threads, options.TeacherSpec);
            var selector = options.NoSelection ? null
                : options.Selector ?? (spec.K is null ? null : spec.NewSelector(opened.Spec.NumClasses));
            return new ScoringSetup(spec, file, opened, compute, selector);
        }
        catch
        {
            compute.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Teacher.Dispose();
        _compute.Dispose();
    }
}
