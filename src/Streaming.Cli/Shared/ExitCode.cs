namespace Streaming.Cli.Shared;

/// <summary>Process exit codes of the <c>streaming</c> command.</summary>
public enum ExitCode
{
    Ok = 0,
    /// <summary>An unexpected internal error (a bug): please report it.</summary>
    InternalError = 1,
    /// <summary>The command line itself was wrong.</summary>
    Usage = 2,
    /// <summary>An input could not be used (missing path, corrupt shard, bad manifest).</summary>
    BadInput = 3,
    /// <summary>The run finished, but some inputs (shards) failed on their own; see the report.</summary>
    PartialFailure = 4,
    /// <summary>A replay's outputs differ from the record (the report names the stage and the file).</summary>
    ReplayMismatch = 5,
    /// <summary><c>env --check</c>: a model's kernels on this machine are off from the float64 reference by more than the tolerance.</summary>
    KernelCheckFailed = 6,
    /// <summary>Interrupted (Ctrl+C).</summary>
    Cancelled = 130,
}
