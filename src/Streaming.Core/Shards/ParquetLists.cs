using Parquet;
using Parquet.Schema;

namespace Streaming.Core.Shards;

/// <summary>
/// Reads a Parquet LIST column row by row from its raw parts. Parquet.Net hands back the defined elements packed, with one
/// definition and one repetition level per entry: repetition 0 starts a row; definition 0 is a null list (when the list
/// is optional), the element's maximum is a present element, anything between an empty list or a null element.
/// </summary>
internal static class ParquetLists
{
    /// <summary>The lists of a row group's <paramref name="rows"/> rows: null where a row's list is null, null elements dropped.</summary>
    public static async Task<T[]?[]> ReadAsync<T>(ParquetRowGroupReader rg, DataField element, int rows, bool listNullable, CancellationToken cancellationToken)
        where T : struct
    {
        long count = rg.GetMetadata(element)?.MetaData?.NumValues ?? throw new InvalidDataException($"{element.Name}: no column metadata");
        var values = new T[count];
        var definition = new int[count];
        var repetition = new int[count];
        await rg.ReadRawAsync<T>(element, values.AsMemory(), definition.AsMemory(), repetition.AsMemory(), cancellationToken).ConfigureAwait(false);
        int max = element.MaxDefinitionLevel;
        var result = new T[]?[rows];
        var current = new List<T>();
        int row = -1, next = 0;
        void Close()
        {
            if (row >= 0 && result[row] is not null) result[row] = [.. current];
            current.Clear();
        }
        for (int i = 0; i < count; i++)
        {
            if (repetition[i] == 0)
            {
                Close();
                if (++row >= rows) throw new InvalidDataException($"{element.Path}: more lists than the row group's {rows} rows");
                result[row] = listNullable && definition[i] == 0 ? null : [];
            }
            if (definition[i] == max) current.Add(values[next++]);
        }
        Close();
        if (row != rows - 1) throw new InvalidDataException($"{element.Path}: {row + 1} lists for {rows} rows");
        return result;
    }
}
