namespace Streaming.Tests.LoopFixture;

/// <summary>
/// A loop of three namespaces that no <c>using</c> line shows, for the type-reference check's own test
/// (<see cref="ArchitectureTests.TheTypeReferenceGraph_SeesRelativeNamesAndParentNamespaces"/>): this one reaches
/// <c>A</c> only in a method body, <c>A</c> reaches <c>B</c> by a relative name, and <c>B</c> reaches this parent
/// namespace with no qualification at all, inside a lambda (a compiler-generated type).
/// </summary>
internal static class Root
{
    public static int Start()
    {
        var first = new A.First();
        return first.GetHashCode();
    }

    public static int Value => 1;
}
