namespace Streaming.Tests;

/// <summary>A piece of the machine that a test needs and NuGet cannot restore is missing.</summary>
internal sealed class MissingPrerequisiteException(string message) : Exception(message);

/// <summary>
/// What some tests need from the machine beyond the .NET SDK: PostgreSQL, chromium, Debian's Fashion-MNIST, npm, root,
/// strace, promtool, Open MPI, jq, python3 (.ci/run installs all of them; the README lists them). A test asks for its
/// pieces before it uses them, and fails at once, in one line that names the missing piece and the command that
/// installs it, instead of with a stack trace from deep inside the test. It fails, it does not skip: a green run means
/// the test ran.
/// </summary>
internal sealed class Prerequisite
{
    private readonly Func<bool> _isThere;

    private Prerequisite(string what, string remedy, Func<bool> isThere)
    {
        What = what;
        Remedy = remedy;
        _isThere = isThere;
    }

    /// <summary>What is needed, as the message names it: "PostgreSQL's server binaries (initdb)".</summary>
    public string What { get; }

    /// <summary>How to get it: "install them with: apt-get install postgresql".</summary>
    public string Remedy { get; }

    /// <summary>The one line a test fails with when the piece is missing.</summary>
    public string Message => $"needs {What} — {Remedy}";

    public bool IsThere => _isThere();

    /// <summary>Throws <see cref="MissingPrerequisiteException"/> with <see cref="Message"/> when the piece is missing.</summary>
    public void Require()
    {
        if (!IsThere) throw new MissingPrerequisiteException(Message);
    }

    /// <summary>A program found on PATH, installed by the Debian package <paramref name="package"/>.</summary>
    public static Prerequisite Executable(string name, string package, string? what = null) =>
        new(what ?? name, $"install it with: apt-get install {package}", () => OnPath(name));

    /// <summary>Root, for a test that does what only root may (<paramref name="why"/>).</summary>
    public static Prerequisite Root(string why) =>
        new($"root ({why})", "run the tests as root, as .ci/run does", () => Environment.UserName == "root");

    public static Prerequisite PostgreSql { get; } = new("PostgreSQL's server binaries (initdb under /usr/lib/postgresql)",
        "install them with: apt-get install postgresql", () => TempPostgres.FindServer() is not null);

    public static Prerequisite Chromium { get; } = new("chromium at /usr/bin/chromium (Playwright drives it; no browser is downloaded)",
        "install it with: apt-get install chromium", () => File.Exists(ChromiumPath));

    public static Prerequisite FashionMnist { get; } = new($"Debian's Fashion-MNIST ({TestPaths.FashionMnistTest})",
        "install it with: apt-get install dataset-fashion-mnist", () => File.Exists(TestPaths.FashionMnistTest));

    public static Prerequisite Npm { get; } = Executable("npm", "npm", "npm (it installs the npm packages the test reads, from their lock files)");

    public static Prerequisite Node { get; } = Executable("node", "nodejs", "node (it runs DuckDB, the independent reader)");

    public static Prerequisite Strace { get; } = Executable("strace", "strace");

    public static Prerequisite Promtool { get; } = Executable("promtool", "prometheus", "promtool (Prometheus's rule checker)");

    public static Prerequisite Mpirun { get; } = Executable("mpirun", "openmpi-bin", "mpirun (Open MPI)");

    public static Prerequisite Jq { get; } = Executable("jq", "jq");

    public static Prerequisite Python3 { get; } = Executable("python3", "python3");

    public const string ChromiumPath = "/usr/bin/chromium";

    /// <summary>Whether <paramref name="name"/> is an executable file in one of PATH's folders (or, with a slash, at that path).</summary>
    public static bool OnPath(string name)
    {
        if (name.Contains('/', StringComparison.Ordinal)) return IsExecutable(name);
        foreach (var folder in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            if (IsExecutable(Path.Combine(folder, name))) return true;
        return false;
    }

    private static bool IsExecutable(string path) =>
        File.Exists(path) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0);
}
