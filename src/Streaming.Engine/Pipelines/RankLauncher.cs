using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Streaming.Core;
using Streaming.Core.Compute;
using Streaming.Models.Training;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// A pipeline's training stage on more than one rank: <c>mpirun -np N [-H hosts] streaming train ...</c> as a child
/// process, with the same options the stage gives an in-process training, each rank on its share of this host's
/// threads. Rank 0's log lines become the stage's, its progress lines the stage's progress.
/// </summary>
internal static partial class RankLauncher
{
    [GeneratedRegex(@"step ([\d,]+)/([\d,]+)\s.*?\sloss ([\d.]+)\s.*?\s([\d,]+) images/s")]
    private static partial Regex ProgressLine();

    [GeneratedRegex(@"trained ([\d,]+) steps \(([\d,]+) images\) in ([\d.]+) min, ([\d,]+) images/s; final loss ([\d.]+)")]
    private static partial Regex ResultLine();

    public static async Task<TrainResult> TrainAsync(TrainOptions o, int ranks, PipelineSpec spec, IProgress<TrainProgress> progress, Action<string> log,
        CancellationToken cancellationToken)
    {
        var psi = Command(o, ranks, spec);
        log($"      training on {ranks} ranks: {string.Join(' ', psi.ArgumentList.Take(psi.ArgumentList.IndexOf("train") + 1))} ...");
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(psi) ?? throw new StreamingException("mpirun could not be started");
        var lines = new List<string>();
        TrainResult? result = null;
        void Line(string? line)
        {
            if (line is null) return;
            lock (lines) lines.Add(line);
            if (ProgressLine().Match(line) is { Success: true } p)
            {
                long step = Number(p.Groups[1].Value), steps = Number(p.Groups[2].Value);
                progress.Report(new TrainProgress(step, steps, step * o.BatchSize, steps * o.BatchSize, double.Parse(p.Groups[3].Value, CultureInfo.InvariantCulture), 0,
                    Number(p.Groups[4].Value), null));
            }
            else if (ResultLine().Match(line) is { Success: true } r)
            {
                result = new TrainResult(Path.Combine(o.Out, Models.IO.ModelFile.DefaultName), Number(r.Groups[1].Value), Number(r.Groups[2].Value),
                    double.Parse(r.Groups[5].Value, CultureInfo.InvariantCulture), clock.Elapsed, Number(r.Groups[4].Value), null, false);
            }
            else if (line.Length > 0 && !line.StartsWith('-') && !line.StartsWith("model:", StringComparison.Ordinal)) log("      " + line);
        }
        process.OutputDataReceived += (_, e) => Line(e.Data);
        process.ErrorDataReceived += (_, e) => Line(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using (cancellationToken.Register(() => { try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } }))
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        if (process.ExitCode != 0 || result is null)
        {
            string tail;
            lock (lines) tail = string.Join(" | ", lines.Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase) || l.Contains("rank", StringComparison.Ordinal)).TakeLast(3));
            throw new StreamingException($"training on {ranks} ranks failed (mpirun exit code {process.ExitCode}): {tail}");
        }
        return result;
    }

    private static long Number(string text) => long.Parse(text.Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);

    /// <summary>mpirun and the <c>train</c> command line that trains <paramref name="o"/> on <paramref name="ranks"/> ranks.</summary>
    internal static ProcessStartInfo Command(TrainOptions o, int ranks, PipelineSpec spec)
    {
        var psi = new ProcessStartInfo("mpirun") { RedirectStandardOutput = true, RedirectStandardError = true };
        var args = psi.ArgumentList;
        // --bind-to none: each rank runs several threads; Open MPI would otherwise bind a rank to one core.
        foreach (var a in new[] { "--oversubscribe", "--bind-to", "none", "-np", ranks.ToString(CultureInfo.InvariantCulture) }) args.Add(a);
        if (Environment.UserName == "root") args.Add("--allow-run-as-root");
        if (spec.Hosts.Length > 0)
        {
            args.Add("-H");
            args.Add(spec.Hosts);
        }
        foreach (var a in Streaming()) args.Add(a);
        var inv = CultureInfo.InvariantCulture;
        var train = new List<string>
        {
            "train", "--data", o.Data, "--arch", o.Arch, "--out", o.Out, "--batch", o.BatchSize.ToString(inv), "--seed", o.Seed.ToString(inv),
            "--device", o.Device, "--isa", spec.Scoring.Compute.Isa.Name(),
            "--channels-last", spec.Scoring.Compute.ChannelsLast ? "true" : "false", "--decode-workers", o.DecodeWorkers.ToString(inv),
        };
        // This machine's threads shared among its ranks; on other hosts, each rank takes its host's cores over its ranks there.
        if (spec.Hosts.Length == 0) train.AddRange(["--threads", Math.Max(1, (o.Threads ?? Environment.ProcessorCount) / ranks).ToString(inv)]);
        if (o.Images is long images) train.AddRange(["--images", images.ToString(inv)]);
        if (o.BaseLr is double lr) train.AddRange(["--lr", lr.ToString("R", inv)]);
        if (o.Schedule is ScheduleKind schedule) train.AddRange(["--schedule", schedule.ToString().ToLowerInvariant()]);
        if (o.WeightDecay is double wd) train.AddRange(["--weight-decay", wd.ToString("R", inv)]);
        if (o.Augment is bool augment) train.Add(augment ? "--augment" : "--no-augment");
        if (o.Init is string init) train.AddRange(["--init", init]);
        if (o.SoftTargets is string soft) train.AddRange(["--soft-targets", soft]);
        if (o.Overwrite) train.Add("--overwrite");
        foreach (var a in train) args.Add(a);
        return psi;
    }

    /// <summary>How to start <c>streaming</c>: the command's own assembly next to the engine's, through dotnet.</summary>
    private static string[] Streaming()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "streaming.dll");
        if (!File.Exists(dll)) throw new StreamingException($"{dll} not found: the pipeline starts its ranks with the streaming command next to the engine");
        return ["dotnet", "exec", dll];
    }
}
