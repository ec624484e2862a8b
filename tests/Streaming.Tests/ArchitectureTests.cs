using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// The folders of the source tree (one namespace each) depend on each other without loops: a loop means two
/// folders that can only be understood, tested or moved together. Checked twice: on the source (every file's
/// namespace, its <c>using</c> lines and its fully qualified <c>Streaming.*</c> names), and on the compiled assemblies
/// (every type reference in metadata and IL, <see cref="TypeReferenceGraph"/>), which also sees names qualified
/// relative to an enclosing namespace and a parent namespace's types used without a <c>using</c>.
/// </summary>
public partial class ArchitectureTests
{
    [GeneratedRegex(@"^namespace\s+([A-Za-z0-9_.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex NamespaceLine();

    [GeneratedRegex(@"^\s*using\s+(?:static\s+)?([A-Za-z0-9_.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex UsingLine();

    [GeneratedRegex(@"\bStreaming(?:\.[A-Z][A-Za-z0-9_]*)+")]
    private static partial Regex QualifiedName();

    /// <summary>Raw, verbatim and regular string literals, char literals and comments, in the order they start.</summary>
    [GeneratedRegex(@"""""""[\s\S]*?""""""|//[^\n]*|'(?:\\.|[^'\\\n])'|@""(?:""""|[^""])*""|""(?:\\.|[^""\\\n])*""")]
    private static partial Regex CommentsAndStrings();

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
            var code = CommentsAndStrings().Replace(text, ""); // comments and strings (Orleans aliases) name types too, without depending on them
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

    /// <summary>Each loop: its namespaces, then each edge between them with an example of it.</summary>
    internal static string Describe(Dictionary<string, Dictionary<string, string>> graph, List<List<string>> loops) =>
        string.Join("\n", loops.Select(loop => $"loop: {string.Join(", ", loop.Order(StringComparer.Ordinal))}\n" + string.Join("\n",
            loop.Order(StringComparer.Ordinal).SelectMany(n => graph[n].Where(e => loop.Contains(e.Key)).OrderBy(e => e.Key, StringComparer.Ordinal)
                .Select(e => $"  {n} -> {e.Key}: {e.Value}")))));

    [Fact]
    public void SourceFolders_DependOnEachOther_WithoutLoops()
    {
        var graph = Dependencies(Path.Combine(TestPaths.Root, "src"));
        Assert.True(graph.Count > 20, $"found only {graph.Count} namespaces under src/");
        var loops = Loops(graph);
        Assert.True(loops.Count == 0, Describe(graph, loops));
    }

    /// <summary>The assemblies of the projects under src/, as the test's build copied them beside it.</summary>
    internal static List<string> SourceAssemblies()
    {
        var result = new List<string>();
        foreach (var project in Directory.EnumerateFiles(Path.Combine(TestPaths.Root, "src"), "*.csproj", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string name = XDocument.Load(project).Descendants("AssemblyName").FirstOrDefault()?.Value ?? Path.GetFileNameWithoutExtension(project);
            string dll = Path.Combine(AppContext.BaseDirectory, name + ".dll");
            Assert.True(File.Exists(dll), $"{Path.GetFileName(project)}: its assembly {name}.dll is not beside the tests (does the test project reference it?)");
            result.Add(dll);
        }
        return result;
    }

    [Fact]
    public void CompiledFolders_DependOnEachOther_WithoutLoops()
    {
        var graph = TypeReferenceGraph.Build(SourceAssemblies());
        Assert.True(graph.Count > 20, $"found only {graph.Count} namespaces in the assemblies");
        var loops = Loops(graph);
        Assert.True(loops.Count == 0, Describe(graph, loops));
    }

    [Fact]
    public void OnlyShards_UsesParquetNet()
    {
        // All Parquet code is in Core/Shards, behind its reader and writer: no other folder names a Parquet.Net type, in a
        // using line or anywhere in its compiled code.
        const string Shards = "Streaming.Core.Shards";
        var graph = TypeReferenceGraph.Build(SourceAssemblies(), ns => ns == "Parquet" || ns.StartsWith("Parquet.", StringComparison.Ordinal));
        Assert.Contains(graph[Shards].Keys, ns => ns.StartsWith("Parquet", StringComparison.Ordinal)); // the check sees Parquet.Net at all
        var elsewhere = graph.Where(n => n.Key != Shards).SelectMany(n => n.Value.Select(e => $"{n.Key} -> {e.Key}: {e.Value}")).ToList();
        var usings = Directory.EnumerateFiles(Path.Combine(TestPaths.Root, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !Path.GetRelativePath(TestPaths.Root, f).StartsWith(Path.Combine("src", "Streaming.Core", "Shards"), StringComparison.Ordinal)
                && UsingLine().Matches(File.ReadAllText(f)).Any(m => m.Groups[1].Value == "Parquet" || m.Groups[1].Value.StartsWith("Parquet.", StringComparison.Ordinal)))
            .Select(f => Path.GetRelativePath(TestPaths.Root, f) + ": using Parquet");
        elsewhere.AddRange(usings);
        Assert.True(elsewhere.Count == 0, string.Join("\n", elsewhere));
    }

    [Fact]
    public void TheTypeReferenceGraph_SeesRelativeNamesAndParentNamespaces()
    {
        // LoopFixture/ holds a loop that no using line and no fully qualified name shows: the source check misses it,
        // the compiled check must not.
        const string Fixture = "Streaming.Tests.LoopFixture";
        Assert.Empty(Loops(Dependencies(Path.Combine(TestPaths.Root, "tests", "Streaming.Tests", "LoopFixture"))));
        var graph = TypeReferenceGraph.Build([typeof(ArchitectureTests).Assembly.Location]);
        Assert.Contains($"{Fixture}.A", graph[Fixture].Keys);
        Assert.Contains($"{Fixture}.B", graph[$"{Fixture}.A"].Keys);
        Assert.Contains(Fixture, graph[$"{Fixture}.B"].Keys);
        Assert.Contains("<>c", graph[$"{Fixture}.B"][Fixture]); // found inside the lambda's compiler-generated class
        var loop = Assert.Single(Loops(graph), l => l.Contains(Fixture));
        Assert.Equal([Fixture, $"{Fixture}.A", $"{Fixture}.B"], loop.Order(StringComparer.Ordinal));
        Assert.Contains($"  {Fixture} -> {Fixture}.A: {Fixture}.Root::Start -> {Fixture}.A.First", Describe(graph, [loop]));
    }

    [GeneratedRegex(@"^\s*namespace\s+([A-Za-z0-9_.]+)\s*[;{]", RegexOptions.Multiline)]
    private static partial Regex AnyNamespaceLine();

    [Fact]
    public void EveryNamespace_NamesItsFolder()
    {
        // A project's folder is its name; each folder below it appends its name. Only a file of top-level statements
        // (the command line's Program.cs) has no namespace.
        var wrong = new List<string>();
        foreach (var root in new[] { "src", "tests", "perf" })
        {
            foreach (var project in Directory.EnumerateFiles(Path.Combine(TestPaths.Root, root), "*.csproj", SearchOption.AllDirectories))
            {
                string projectDir = Path.GetDirectoryName(project)!;
                foreach (var file in Directory.EnumerateFiles(projectDir, "*.cs", SearchOption.AllDirectories))
                {
                    string relative = Path.GetRelativePath(projectDir, file);
                    if (relative.Split(Path.DirectorySeparatorChar)[0] is "obj" or "bin") continue;
                    string folder = Path.GetDirectoryName(relative)!;
                    string expected = Path.GetFileName(projectDir) + (folder.Length == 0 ? "" : "." + folder.Replace(Path.DirectorySeparatorChar, '.'));
                    var declared = AnyNamespaceLine().Matches(Regex.Replace(File.ReadAllText(file), @"//[^\n]*", "")).Select(m => m.Groups[1].Value).ToList();
                    if (declared.Count == 0 && Path.GetFileName(file) == "Program.cs") continue;
                    if (declared.Count == 0 || declared.Any(d => d != expected))
                        wrong.Add($"{Path.GetRelativePath(TestPaths.Root, file)}: namespace {(declared.Count == 0 ? "(none)" : string.Join(", ", declared))}, folder says {expected}");
                }
            }
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public void OnlyTheCommandLine_ReferencesTheSilo()
    {
        // The silo (grains, their storage, the worker) is hosted by the command line alone; a client of the cluster
        // (the daemon, the submitter) takes Streaming.Cluster.Client. Tests and benchmarks may reference anything.
        // Read from the project files' ProjectReferences, followed through (a reference to the command line counts).
        const string Silo = "Streaming.Cluster";
        var allowed = new HashSet<string>(StringComparer.Ordinal) { "Streaming.Cli", "Streaming.Tests", "Streaming.Perf" };
        var references = new[] { "src", "tests", "perf" }
            .SelectMany(root => Directory.EnumerateFiles(Path.Combine(TestPaths.Root, root), "*.csproj", SearchOption.AllDirectories))
            .ToDictionary(project => Path.GetFileNameWithoutExtension(project), project => XDocument.Load(project).Descendants("ProjectReference")
                .Select(r => Path.GetFileNameWithoutExtension(((string?)r.Attribute("Include") ?? "").Replace('\\', '/'))).ToList(), StringComparer.Ordinal);
        Assert.True(references.Count >= 8 && references.ContainsKey(Silo), $"found only {string.Join(", ", references.Keys)}");
        bool Reaches(string project, HashSet<string> seen) =>
            seen.Add(project) && references.TryGetValue(project, out var refs) && refs.Any(r => r == Silo || Reaches(r, seen));
        var offenders = references.Keys.Where(p => p != Silo && !allowed.Contains(p) && Reaches(p, [])).Order(StringComparer.Ordinal).ToList();
        Assert.True(offenders.Count == 0, $"only {string.Join(", ", allowed)} may reference {Silo}: {string.Join(", ", offenders)} do");
        Assert.True(Reaches("Streaming.Cli", []), "the command line hosts the silo: the test reads the references wrong");
    }

    [Fact]
    public void TheLoopFinder_FindsALoop_AndIgnoresCommentsAndStrings()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("a.cs"), "using Streaming.B;\nnamespace Streaming.A;\npublic class X { }\n");
        File.WriteAllText(tmp.Sub("b.cs"), "namespace Streaming.B;\n[Alias(\"Streaming.A.X\")]\npublic class Y { Streaming.C.Z? z; char q = '\"'; }\n");
        File.WriteAllText(tmp.Sub("c.cs"), "namespace Streaming.C;\n/// <see cref=\"Streaming.B.Y\"/>\npublic class Z { string s = @\"\\\" + \"Streaming.A.X\"; }\n");
        Assert.Empty(Loops(Dependencies(tmp.Path)));
        File.WriteAllText(tmp.Sub("c.cs"), "namespace Streaming.C;\npublic class Z { Streaming.A.X? x; }\n");
        var loop = Assert.Single(Loops(Dependencies(tmp.Path)));
        Assert.Equal(["Streaming.A", "Streaming.B", "Streaming.C"], loop.Order(StringComparer.Ordinal));
    }
}
