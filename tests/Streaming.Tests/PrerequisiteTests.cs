using Xunit;

namespace Streaming.Tests;

/// <summary>A test that needs a piece of the machine fails in one line that names the piece and how to install it.</summary>
public class PrerequisiteTests
{
    [Fact]
    public void Require_WhenAnExecutableIsMissing_FailsInOneLineNamingItAndItsPackage()
    {
        var missing = Prerequisite.Executable("streaming-no-such-tool-31", "streaming-no-such-package");
        Assert.False(missing.IsThere);
        var e = Assert.Throws<MissingPrerequisiteException>(missing.Require);
        Assert.Equal("needs streaming-no-such-tool-31 — install it with: apt-get install streaming-no-such-package", e.Message);
    }

    [Fact]
    public void Require_WhenTheExecutableIsOnPath_Passes()
    {
        var sh = Prerequisite.Executable("sh", "dash");
        Assert.True(sh.IsThere);
        sh.Require();
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void OnPath_FindsOnlyExecutableFiles()
    {
        using var tmp = new TempDir();
        string tool = tmp.Sub("tool");
        File.WriteAllText(tool, "#!/bin/sh\n");
        File.SetUnixFileMode(tool, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.False(Prerequisite.OnPath(tool));
        File.SetUnixFileMode(tool, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Assert.True(Prerequisite.OnPath(tool));
        Assert.False(Prerequisite.OnPath(tmp.Sub("absent")));
    }

    [Fact]
    public void EachPieceTheTestsNeed_HasItsOneLineMessage()
    {
        Assert.Equal("needs PostgreSQL's server binaries (initdb under /usr/lib/postgresql) — install them with: apt-get install postgresql",
            Prerequisite.PostgreSql.Message);
        Assert.Equal("needs chromium at /usr/bin/chromium (Playwright drives it; no browser is downloaded) — install it with: apt-get install chromium",
            Prerequisite.Chromium.Message);
        Assert.Equal("needs Debian's Fashion-MNIST (/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz) — install it with: apt-get install dataset-fashion-mnist",
            Prerequisite.FashionMnist.Message);
        Assert.Equal("needs npm (it installs the npm packages the test reads, from their lock files) — install it with: apt-get install npm",
            Prerequisite.Npm.Message);
        Assert.Equal("needs root (it mounts a tmpfs) — run the tests as root, as .ci/run does", Prerequisite.Root("it mounts a tmpfs").Message);
        Assert.Equal("needs mpirun (Open MPI) — install it with: apt-get install openmpi-bin", Prerequisite.Mpirun.Message);
        Assert.Equal("needs promtool (Prometheus's rule checker) — install it with: apt-get install prometheus", Prerequisite.Promtool.Message);
        Assert.All(new[] { Prerequisite.PostgreSql, Prerequisite.Chromium, Prerequisite.FashionMnist, Prerequisite.Npm, Prerequisite.Node,
            Prerequisite.Strace, Prerequisite.Promtool, Prerequisite.Mpirun, Prerequisite.Jq, Prerequisite.Python3 }, p => Assert.DoesNotContain('\n', p.Message));
    }
}
