using System.Collections.Concurrent;

namespace Streaming.Daemon;

/// <summary>
/// The daemon's one policy for failures that may pass: an inbox entry that keeps failing (to be listed, or to be taken
/// in) is given up on, and quarantined, once it has failed <c>intake.retry_tries</c> times over at least
/// <c>intake.retry_seconds</c>. Keyed by drop name.
/// </summary>
internal sealed class RetryCounter(int tries, TimeSpan window)
{
    private readonly ConcurrentDictionary<string, (int Tries, DateTime First)> _failing = new(StringComparer.Ordinal);

    /// <summary>Counts a failure of <paramref name="name"/>: how many so far, over how long, and whether to give up (the counter then forgets it).</summary>
    public (int Tries, TimeSpan Since, bool GiveUp) Failed(string name)
    {
        var now = DateTime.UtcNow;
        var f = _failing.AddOrUpdate(name, _ => (1, now), (_, t) => (t.Tries + 1, t.First));
        bool giveUp = f.Tries >= tries && now - f.First >= window;
        if (giveUp) _failing.TryRemove(name, out _);
        return (f.Tries, now - f.First, giveUp);
    }

    /// <summary>It worked (or is handled otherwise): start counting afresh.</summary>
    public void Clear(string name) => _failing.TryRemove(name, out _);

    /// <summary>Forgets the names not in <paramref name="present"/> (entries gone from the inbox).</summary>
    public void KeepOnly(IReadOnlySet<string> present)
    {
        foreach (var gone in _failing.Keys.Where(k => !present.Contains(k)).ToList()) _failing.TryRemove(gone, out _);
    }
}
