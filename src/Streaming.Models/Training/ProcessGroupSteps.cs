using System.Text.Json;
using Streaming.Core;

namespace Streaming.Models.Training;

/// <summary>
/// A step that every rank of a <see cref="IProcessGroup"/> takes, and that must succeed on all of them or on none:
/// each rank runs its part, then they compare notes (one collective), and a failure anywhere ends the step on every
/// rank with the same error. A rank that failed alone would otherwise leave the others waiting in the next collective.
/// </summary>
public sealed class GroupRefusal(string message, bool speaks) : StreamingException(message)
{
    /// <summary>Whether this rank says it (rank 0); the others end quietly with the same exit code.</summary>
    public bool Speaks { get; } = speaks;
}

internal static class ProcessGroupSteps
{
    /// <summary>
    /// Runs <paramref name="part"/> on this rank and <see cref="IProcessGroup.Gather"/>s the outcome: every rank returns
    /// what it computed, or every rank throws a <see cref="GroupRefusal"/> that names the ranks that failed and why.
    /// </summary>
    public static async Task<T> AllOrNoneAsync<T>(this IProcessGroup group, string what, Func<Task<T>> part)
    {
        T result = default!;
        string? error = null;
        try
        {
            result = await part().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException && group.Size > 1)
        {
            error = e is StreamingException or ArgumentException or IOException ? e.Message : e.ToString();
        }
        if (group.Size == 1) return result;
        var outcomes = group.Gather(error ?? "");
        var failed = outcomes.Select((o, rank) => (o, rank)).Where(x => x.o.Length > 0).ToList();
        if (failed.Count > 0)
            throw new GroupRefusal($"{what}: " + string.Join("; ", failed.Select(f => $"rank {f.rank}: {f.o}")), group.Rank == 0);
        return result;
    }

    /// <summary>
    /// Refuses, on every rank at once, a run whose ranks disagree on <paramref name="identity"/> (what must be the same
    /// everywhere: options, data, engine, kernels), naming the first field that differs and the ranks.
    /// </summary>
    public static void Agree(this IProcessGroup group, SortedDictionary<string, string> identity)
    {
        if (group.Size == 1) return;
        var all = group.Gather(JsonSerializer.Serialize(identity)).Select(j => JsonSerializer.Deserialize<SortedDictionary<string, string>>(j)!).ToList();
        foreach (var (key, mine) in all[0])
            for (int r = 1; r < all.Count; r++)
                if (!all[r].TryGetValue(key, out var theirs) || theirs != mine)
                    throw new GroupRefusal($"the ranks disagree on the run: {key} is {mine} on rank 0 but {theirs ?? "(none)"} on rank {r}; start every rank with the same options, data and engine", group.Rank == 0);
    }
}
