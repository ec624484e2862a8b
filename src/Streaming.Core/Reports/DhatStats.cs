using Streaming.Core.Shards;

namespace Streaming.Core.Reports;

/// <summary>
/// One streaming pass over <c>dhat.parquet</c>: per class its size, how many entries have a known true label
/// and how many of those are right, the sum of scores, and the entries at ranks 1, 10, 100, ... for the contact
/// sheets. Memory holds one row group and the contact cells, whatever the size of D-hat.
/// </summary>
internal sealed class DhatStats
{
    private DhatStats(int classes)
    {
        Counts = new int[classes];
        Known = new long[classes];
        Correct = new long[classes];
        ScoreSums = new double[classes];
        Cells = new List<ContactCell>[classes];
        for (int c = 0; c < classes; c++) Cells[c] = [];
    }

    public int[] Counts { get; }
    public long[] Known { get; }
    public long[] Correct { get; }
    public double[] ScoreSums { get; }
    public List<ContactCell>[] Cells { get; }
    public long Rows { get; private set; }

    /// <summary>1, 10, 100, ...: the ranks a contact sheet shows.</summary>
    internal static bool IsShownRank(int rank)
    {
        if (rank < 1) return false;
        while (rank % 10 == 0) rank /= 10;
        return rank == 1;
    }

    /// <summary>Reads D-hat and checks that it is sorted by class then rank, with ranks 1, 2, 3, ... in each class.</summary>
    public static async Task<DhatStats> ReadAsync(string path, int classes, IReadOnlyDictionary<string, int>? labels, CancellationToken cancellationToken)
    {
        if (!File.Exists(path)) throw new StreamingException($"{path}: not found (is the selection folder the output of 'streaming select'?)");
        var stats = new DhatStats(classes);
        await using var reader = await ParquetFileReader.OpenAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
        ParquetColumn Column(string name) => reader.Column(name) ?? throw new StreamingException($"{path}: not a D-hat file: column '{name}' is missing");
        var classColumn = Column("class");
        var rankColumn = Column("rank");
        var idColumn = Column("id");
        var scoreColumn = Column("score");
        int lastClass = -1, lastRank = 0;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            int n;
            int[] cls, ranks;
            string?[] ids;
            float[] scores;
            try
            {
                using var rg = reader.OpenRowGroup(g);
                n = checked((int)rg.RowCount);
                cls = new int[n];
                ranks = new int[n];
                ids = new string?[n];
                scores = new float[n];
                await rg.ReadAsync<int>(classColumn, cls.AsMemory(), cancellationToken).ConfigureAwait(false);
                await rg.ReadAsync<int>(rankColumn, ranks.AsMemory(), cancellationToken).ConfigureAwait(false);
                await rg.ReadAsync(idColumn, ids.AsMemory(), cancellationToken).ConfigureAwait(false);
                await rg.ReadAsync<float>(scoreColumn, scores.AsMemory(), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException and not StreamingException)
            {
                throw new StreamingException($"{path}: corrupt D-hat file ({e.Message})", e);
            }
            for (int i = 0; i < n; i++)
            {
                int c = cls[i], rank = ranks[i];
                string id = ids[i] ?? throw new StreamingException($"{path}: row {stats.Rows} has a null id");
                if ((uint)c >= (uint)classes) throw new StreamingException($"{path}: row {stats.Rows} names class {c}, outside 0..{classes - 1}");
                bool next = c == lastClass ? rank == lastRank + 1 : c > lastClass && rank == 1;
                if (!next) throw new StreamingException($"{path}: row {stats.Rows} (class {c}, rank {rank}) is out of order: D-hat must be sorted by class, then rank from 1");
                lastClass = c;
                lastRank = rank;
                stats.Rows++;
                stats.Counts[c]++;
                stats.ScoreSums[c] += scores[i];
                int? truth = null;
                if (labels is not null && labels.TryGetValue(id, out int t))
                {
                    truth = t;
                    stats.Known[c]++;
                    if (t == c) stats.Correct[c]++;
                }
                if (IsShownRank(rank)) stats.Cells[c].Add(new ContactCell(rank, id, scores[i], truth));
            }
        }
        return stats;
    }
}
