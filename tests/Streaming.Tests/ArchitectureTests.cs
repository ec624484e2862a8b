using System.Text.RegularExpressions;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// The folders of the source tree (one namespace each) depend on each other without loops: a loop means two
/// folders that can only be understood, tested or moved together. Reads every source file's namespace, its
/// <c>using</c> lines and its fully qualified <c>Streaming.*</c> names.
/// </summary>
public partial class ArchitectureTests
{
    [GeneratedRegex(@"^namespace\s+([A-Za-z0-9_.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex NamespaceLine();

    [GeneratedRegex(@"^\s*using\s+(?:static\s+)?([A-Za-z0-9_.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex UsingLine();

    [GeneratedRegex(@"\bStreaming(?:\.[A-Z][A-Za-z0-9_]*)+")]
    private static partial Regex QualifiedName();

    /// <summary>Each namespace under src/ and the namespaces it refers to, with one file that does, for the message.</summary>
    internal static Dictionary<string, Dictionary<string, string>> Dependencies(string srcRoot)
    {
        var files = Directory.EnumerateFiles(srcRoot, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .Select(f => (Path: f, Text: File.ReadAllText(f)))
            .Select(f => (f.Path, f.Text, Namespace: NamespaceLine().Match(f.Text) is { Success: true } m ? m.Groups[1].Value : null))
            .Where(f => f.Namespace is not null)
            .ToList();
        var known = files.Select(f => f.Namespace!).ToHashSet(StringComparer.Ordinal);
        string? Resolve(string name)
        {
            // The longest known namespace the name starts with (a type's full name names its namespace first).
            for (string n = name; ; n = n[..n.LastIndexOf('.')])
            {
                if (known.Contains(n)) return n;
                if (!n.Contains('.')) return null;
            }
        }
        var graph = known.ToDictionary(n => n, _ => new Dictionary<string, string>(StringComparer.Ordinal), StringComparer.Ordinal);
        foreach (var (path, text, ns) in files)
        {
            var code = Regex.Replace(text, @"///[^\n]*|//[^\n]*|""(?:[^""\\\n]|\\.)*""", ""); // comments and strings name types too, without depending on them
            var names = UsingLine().Matches(code).Select(m => m.Groups[1].Value).Concat(QualifiedName().Matches(code).Select(m => m.Value));
            foreach (var name in names)
                if (Resolve(name) is string target && target != ns)
                    graph[ns!].TryAdd(target, Path.GetRelativePath(srcRoot, path));
        }
        return graph;
    }

    /// <summary>The strongly connected components with more than one namespace (Tarjan).</summary>
    internal static List<List<string>> Loops(Dictionary<string, Dictionary<string, string>> graph)
    {
        int index = 0;
        var indexOf = new Dictionary<string, int>();
        var low = new Dictionary<string, int>();
        var stack = new Stack<string>();
        var onStack = new HashSet<string>();
        var loops = new List<List<string>>();
        void Visit(string v)
        {
            indexOf[v] = low[v] = index++;
            stack.Push(v);
            onStack.Add(v);
            foreach (var w in graph[v].Keys)
            {
                if (!indexOf.ContainsKey(w)) { Visit(w); low[v] = Math.Min(low[v], low[w]); }
                else if (onStack.Contains(w)) low[v] = Math.Min(low[v], indexOf[w]);
            }
            if (low[v] != indexOf[v]) return;
            var component = new List<string>();
            string x;
            do { x = stack.Pop(); onStack.Remove(x); component.Add(x); } while (x != v);
            if (component.Count > 1) loops.Add(component);
        }
        foreach (var v in graph.Keys.Order(StringComparer.Ordinal))
            if (!indexOf.ContainsKey(v)) Visit(v);
        return loops;
    }

    [Fact]
    public void SourceFolders_DependOnEachOther_WithoutLoops()
    {
        var graph = Dependencies(Path.Combine(TestPaths.Root, "src"));
        Assert.True(graph.Count > 20, $"found only {graph.Count} namespaces under src/");
        var loops = Loops(graph);
        Assert.True(loops.Count == 0, string.Join("\n", loops.Select(loop => "loop: " + string.Join(", ", loop.Select(n =>
            $"{n} -> {string.Join(" / ", graph[n].Where(e => loop.Contains(e.Key)).Select(e => $"{e.Key} ({e.Value})"))}")))));
    }

    [Fact]
    public void TheLoopFinder_FindsALoop_AndIgnoresComments()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("a.cs"), "using Streaming.B;\nnamespace Streaming.A;\npublic class X { }\n");
        File.WriteAllText(tmp.Sub("b.cs"), "namespace Streaming.B;\npublic class Y { Streaming.C.Z? z; }\n");
        File.WriteAllText(tmp.Sub("c.cs"), "namespace Streaming.C;\n/// <see cref=\"Streaming.B.Y\"/>\npublic class Z { }\n");
        Assert.Empty(Loops(Dependencies(tmp.Path)));
        File.WriteAllText(tmp.Sub("c.cs"), "namespace Streaming.C;\npublic class Z { Streaming.A.X? x; }\n");
        var loop = Assert.Single(Loops(Dependencies(tmp.Path)));
        Assert.Equal(["Streaming.A", "Streaming.B", "Streaming.C"], loop.Order(StringComparer.Ordinal));
    }
}
