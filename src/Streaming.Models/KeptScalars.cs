using TorchSharp;

namespace Streaming.Models;

/// <summary>
/// TorchSharp scalars that stay alive for the whole process.
/// </summary>
/// <remarks>
/// TorchSharp turns a .NET number passed where a <see cref="Scalar"/> is expected (<c>t.add_(1)</c>,
/// <c>t.add_(u, alpha: -lr)</c>, and <c>t.add_(u)</c>, which passes alpha = 1) into a temporary
/// <see cref="Scalar"/>. That object has a finalizer that frees its native value. It hands only the native
/// pointer to libtorch, so once the pointer is read the object is garbage. A collection during the native call
/// can then free the value while libtorch reads it. We saw this once in training: libtorch stopped with
/// "Expected false to be true" from <c>Scalar::toLong</c>, halfway through a resnet20 run, inside BatchNorm's
/// <c>num_batches_tracked.add_(1)</c>. Freed memory that is reused could instead give a wrong value silently.
/// Hot paths therefore pass scalars that something holds: these static ones, or a <c>using</c> local, which
/// stays reachable until it is disposed after the call.
/// </remarks>
internal static class KeptScalars
{
    /// <summary>The integer 1 (what TorchSharp's implicit conversion of <c>1</c> makes).</summary>
    public static readonly Scalar One = 1.ToScalar();
}
