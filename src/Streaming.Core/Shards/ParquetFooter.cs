namespace Streaming.Core.Shards;

/// <summary>
/// Checks a Parquet footer (Thrift FileMetaData) against parquet.thrift before Parquet.Net reads it. Parquet.Net's
/// generated reader picks what to read by field id, whatever the wire type says, and trusts every count: a footer with
/// one flipped bit can send it reading past the end for ever (found by the fuzz tests). Here every field the format
/// defines must carry its type, every list its element type, every count fit in the bytes left, and nesting stay
/// under 64; fields the format does not define are skipped by their wire type, as readers do. Encrypted footers are
/// refused: nothing here writes or reads them.
/// </summary>
internal static class ParquetFooter
{
    // Thrift compact protocol types.
    private const int Bool = 1, I8 = 3, I16 = 4, I32 = 5, I64 = 6, Double = 7, Binary = 8, List = 9, Struct = 12;

    /// <summary>A field as parquet.thrift defines it: its type, and for structs and lists of structs, the struct.</summary>
    private sealed record Field(int Type, Shape? Of = null, int Element = 0);

    private sealed class Shape(string name)
    {
        public string Name { get; } = name;
        public Dictionary<short, Field> Fields { get; } = [];
    }

    private static readonly Shape FileMetaData = Build();

    private static Shape Build()
    {
        Shape S(string name, params (short Id, Field F)[] fields)
        {
            var s = new Shape(name);
            foreach (var (id, f) in fields) s.Fields[id] = f;
            return s;
        }
        Field F(int type) => new(type);
        Field Sub(Shape s) => new(Struct, s);
        Field ListOf(int element, Shape? of = null) => new(List, of, element);

        var empty = S("empty");
        var keyValue = S("KeyValue", (1, F(Binary)), (2, F(Binary)));
        var timeUnit = S("TimeUnit", (1, Sub(empty)), (2, Sub(empty)), (3, Sub(empty)));
        var time = S("TimeType", (1, F(Bool)), (2, Sub(timeUnit)));
        var logical = S("LogicalType", (1, Sub(empty)), (2, Sub(empty)), (3, Sub(empty)), (4, Sub(empty)),
            (5, Sub(S("DecimalType", (1, F(I32)), (2, F(I32))))), (6, Sub(empty)), (7, Sub(time)), (8, Sub(time)),
            (10, Sub(S("IntType", (1, F(I8)), (2, F(Bool))))), (11, Sub(empty)), (12, Sub(empty)), (13, Sub(empty)), (14, Sub(empty)),
            (15, Sub(empty)), (16, Sub(empty)));
        var schemaElement = S("SchemaElement", (1, F(I32)), (2, F(I32)), (3, F(I32)), (4, F(Binary)), (5, F(I32)), (6, F(I32)),
            (7, F(I32)), (8, F(I32)), (9, F(I32)), (10, Sub(logical)));
        var statistics = S("Statistics", (1, F(Binary)), (2, F(Binary)), (3, F(I64)), (4, F(I64)), (5, F(Binary)), (6, F(Binary)),
            (7, F(Bool)), (8, F(Bool)));
        var encodingStats = S("PageEncodingStats", (1, F(I32)), (2, F(I32)), (3, F(I32)));
        var sizeStatistics = S("SizeStatistics", (1, F(I64)), (2, ListOf(I64)), (3, ListOf(I64)));
        var columnMeta = S("ColumnMetaData", (1, F(I32)), (2, ListOf(I32)), (3, ListOf(Binary)), (4, F(I32)), (5, F(I64)), (6, F(I64)),
            (7, F(I64)), (8, ListOf(Struct, keyValue)), (9, F(I64)), (10, F(I64)), (11, F(I64)), (12, Sub(statistics)),
            (13, ListOf(Struct, encodingStats)), (14, F(I64)), (15, F(I32)), (16, Sub(sizeStatistics)));
        var columnChunk = S("ColumnChunk", (1, F(Binary)), (2, F(I64)), (3, Sub(columnMeta)), (4, F(I64)), (5, F(I32)), (6, F(I64)),
            (7, F(I32)), (8, new Field(-1)), (9, new Field(-1)));
        var sortingColumn = S("SortingColumn", (1, F(I32)), (2, F(Bool)), (3, F(Bool)));
        var rowGroup = S("RowGroup", (1, ListOf(Struct, columnChunk)), (2, F(I64)), (3, F(I64)), (4, ListOf(Struct, sortingColumn)),
            (5, F(I64)), (6, F(I64)), (7, F(I16)));
        var columnOrder = S("ColumnOrder", (1, Sub(empty)));
        return S("FileMetaData", (1, F(I32)), (2, ListOf(Struct, schemaElement)), (3, F(I64)), (4, ListOf(Struct, rowGroup)),
            (5, ListOf(Struct, keyValue)), (6, F(Binary)), (7, ListOf(Struct, columnOrder)), (8, new Field(-1)), (9, new Field(-1)));
    }

    /// <summary>Throws <see cref="InvalidDataException"/> saying what is wrong when <paramref name="footer"/> is not a FileMetaData Parquet.Net can read safely.</summary>
    public static void Check(ReadOnlySpan<byte> footer)
    {
        var r = new ParquetPages.ThriftReader(footer);
        ReadStruct(ref r, FileMetaData);
    }

    private static void ReadStruct(ref ParquetPages.ThriftReader r, Shape shape)
    {
        r.Enter();
        short last = 0;
        while (true)
        {
            var (type, id) = r.FieldHeader(ref last);
            if (type == 0) break;
            if (!shape.Fields.TryGetValue(id, out var field))
            {
                r.Skip(type);
                continue;
            }
            if (field.Type == -1) throw new InvalidDataException($"{shape.Name} field {id}: encrypted Parquet is not read");
            bool matches = field.Type == Bool ? type is 1 or 2 : type == field.Type;
            if (!matches) throw new InvalidDataException($"{shape.Name} field {id} has wire type {type}, not {field.Type}");
            if (field.Type == Struct) ReadStruct(ref r, field.Of!);
            else if (field.Type == List) ReadList(ref r, shape, id, field);
            else r.Skip(type);
        }
        r.Leave();
    }

    private static void ReadList(ref ParquetPages.ThriftReader r, Shape shape, short id, Field field)
    {
        var (element, count) = r.ListHeader();
        if (count > 0 && element != field.Element && !(field.Element == Bool && element is 1 or 2))
            throw new InvalidDataException($"{shape.Name} field {id} is a list of wire type {element}, not {field.Element}");
        r.Enter();
        for (long i = 0; i < count; i++)
        {
            if (field.Of is { } of) ReadStruct(ref r, of);
            else r.SkipElement(element);
        }
        r.Leave();
    }
}
