namespace Streaming.Tests.LoopFixture.A;

/// <summary>Part of <see cref="Root"/>'s loop: refers to <c>B</c> by a name relative to the enclosing namespace.</summary>
internal sealed class First
{
    public int Next() => B.Second.Get();
}
