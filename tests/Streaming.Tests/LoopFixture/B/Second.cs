namespace Streaming.Tests.LoopFixture.B;

/// <summary>Part of <see cref="Root"/>'s loop: refers to the parent namespace unqualified, from a lambda.</summary>
internal static class Second
{
    public static int Get()
    {
        Func<int> value = () => Root.Value;
        return value();
    }
}
