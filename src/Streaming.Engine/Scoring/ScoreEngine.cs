using System.Diagnostics;
using System.Text.Json;
using Streaming.Core.Dataflow;
using Streaming.Core.Datasets;
using Streaming.Models.Teachers;

namespace Streaming.Engine.Scoring;

/// <summary>
/// <c>score</c>: step 2 of the method on one machine, a <see cref="ScoringSession{TTag}"/> whose host writes local files
/// (<see cref="LocalScoreHost"/>). One score shard per input shard, written atomically; with K, D-hat in the same pass.
/// The unit of work and of resume is the shard: a rerun into the same folder skips shards whose score shard exists, and
/// the selection, a pure function of the scores, comes out the same.
/// </summary>
public static class ScoreEngine
{
    public const string StagesFile = "stages.jsonl";

    /// <param name="teacherOverride">A model to score with instead of opening <see cref="ScoreOptions.Teacher"/> (tests: a
    /// deterministic stand-in; the file is still hashed into scoring.json). The caller keeps ownership.</param>
    public static async Task<ScoreResult> RunAsync(ScoreOptions o, IProgress<(long Scored, long Total, double Rate)>? progress = null,
        Action<string>? log = null, CancellationToken cancellationToken = default, ITeacher? teacherOverride = null)
    {
        log ??= _ => { };
        var clock = Stopwatch.StartNew();
        var dataset = DatasetManifest.Load(o.Data);
        var host = new LocalScoreHost(o.Out, dataset, log);
        var setup = new ScoringSetupOptions
        {
            TeacherSpec = o.TeacherSpec,
            Teachers = teacherOverride is null ? FileTeacherSource.Instance : new LentTeacherSource(teacherOverride),
        };
        await using var session = await ScoringSession<int>.OpenAsync(o.Scoring, o.Teacher, host, setup, cancellationToken).ConfigureAwait(false);
        if (dataset.Classes.Count > 0 && dataset.Classes.Count != session.Setup.Classes.Count)
            log($"note: the data names {dataset.Classes.Count} classes, the teacher predicts {session.Setup.Classes.Count}; scores use the teacher's");

        var pending = host.Pending(o.ShardOrder);
        int skipped = (o.ShardOrder?.Count ?? dataset.Shards.Count) - pending.Count;
        if (skipped > 0) log($"resuming: {skipped} of {skipped + pending.Count} shards already scored");
        long total = pending.Sum(i => dataset.Shards[i].Rows);
        IReadOnlyList<StageSnapshot> final;
        await using (var stages = new StageLog(Path.Combine(o.Out, StagesFile), session, clock, total, progress))
        {
            await DriveAsync(session, o.Data, dataset, pending).ConfigureAwait(false);
            final = stages.Final();
        }
        string bottleneck = final.OrderByDescending(s => s.Utilization).First().Stage;
        var shards = await host.ShardsAsync(session.Selector, cancellationToken).ConfigureAwait(false);
        var selection = await session.CloseAsync(o.Out, o.Data, shards, host.Failed, cancellationToken).ConfigureAwait(false);
        return new ScoreResult(host.Scored, host.Quarantined, pending.Count - host.Failed.Count, skipped, host.Failed.Select(f => f.Input).ToList(),
            clock.Elapsed, final, bottleneck, selection);
    }

    /// <summary>The driver: shards in order; a shard that fails reaches the host with its error.</summary>
    private static async Task DriveAsync(ScoringSession<int> session, string data, DatasetManifest dataset, List<int> pending)
    {
        try
        {
            foreach (int shard in pending)
                await session.SendAsync(Path.Combine(data, dataset.Shards[shard].File), dataset.Shards[shard].File, shard).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await session.FaultAsync(e).ConfigureAwait(false);
            return;
        }
        await session.DrainAsync().ConfigureAwait(false);
    }

    /// <summary>The stages' counters once a second into <c>stages.jsonl</c> (and the progress), and once more at the end.</summary>
    private sealed class StageLog : IAsyncDisposable
    {
        private readonly StreamWriter _file;
        private readonly ScoringSession<int> _session;
        private readonly Stopwatch _clock;
        private readonly Timer _timer;

        public StageLog(string path, ScoringSession<int> session, Stopwatch clock, long total, IProgress<(long Scored, long Total, double Rate)>? progress)
        {
            _file = new StreamWriter(path, append: false) { AutoFlush = true };
            _session = session;
            _clock = clock;
            _timer = new Timer(_ =>
            {
                Write(Snapshot());
                long through = session.ImagesInferred;
                progress?.Report((through, total, through / Math.Max(1e-9, clock.Elapsed.TotalSeconds)));
            }, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        }

        private List<StageSnapshot> Snapshot() => _session.Stages.Select(s => s.Snapshot()).ToList();

        private void Write(List<StageSnapshot> snapshot)
        {
            lock (_file) _file.WriteLine(JsonSerializer.Serialize(new { t = Math.Round(_clock.Elapsed.TotalSeconds, 2), stages = snapshot }));
        }

        /// <summary>Stops the timer and writes the last line.</summary>
        public List<StageSnapshot> Final()
        {
            _timer.Change(Timeout.Infinite, Timeout.Infinite);
            var snapshot = Snapshot();
            Write(snapshot);
            return snapshot;
        }

        public async ValueTask DisposeAsync()
        {
            await _timer.DisposeAsync().ConfigureAwait(false);
            await _file.DisposeAsync().ConfigureAwait(false);
        }
    }
}
