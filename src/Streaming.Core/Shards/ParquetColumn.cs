using Parquet.Schema;

namespace Streaming.Core.Shards;

/// <summary>
/// One column of a Parquet file: a leaf of its schema, found in a <see cref="ParquetFileReader"/>'s
/// <see cref="ParquetFileReader.Columns"/>, or declared for a <see cref="ParquetFileWriter"/> with
/// <see cref="Required{T}"/>, <see cref="Optional{T}"/> or <see cref="List{T}"/>. Callers outside this folder see names,
/// types and levels, never Parquet.Net's schema types.
/// </summary>
public sealed class ParquetColumn
{
    private ParquetColumn(DataField leaf, Field topLevel)
    {
        Leaf = leaf;
        TopLevel = topLevel;
        Path = leaf.Path.ToList();
        Type = TypeOf(leaf.ClrType);
    }

    /// <summary>The leaf that holds the values.</summary>
    internal DataField Leaf { get; }

    /// <summary>What a schema lists: the leaf itself, or the list around it.</summary>
    internal Field TopLevel { get; }

    /// <summary>The leaf's name (<c>element</c> for a list's values).</summary>
    public string Name => Leaf.Name;

    /// <summary>The names from the top-level field down to the leaf (one name for a top-level column).</summary>
    public IReadOnlyList<string> Path { get; }

    public ParquetValueType Type { get; }

    public bool IsNullable => Leaf.IsNullable;

    public int MaxDefinitionLevel => Leaf.MaxDefinitionLevel;

    public int MaxRepetitionLevel => Leaf.MaxRepetitionLevel;

    public override string ToString() => string.Join('.', Path);

    /// <summary>A column of a file being read.</summary>
    internal static ParquetColumn Read(DataField leaf) => new(leaf, leaf);

    /// <summary>A top-level column whose every value is present.</summary>
    public static ParquetColumn Required<T>(string name) => Flat(new DataField<T>(name, nullable: false));

    /// <summary>A top-level column of values that may be null.</summary>
    public static ParquetColumn Optional<T>(string name) where T : struct => Flat(new DataField<T?>(name, nullable: true));

    /// <summary>
    /// A standard LIST column (<c>name.list.element</c>, the list itself nullable, its elements not), which pandas, pyarrow,
    /// DuckDB and Spark read as a list. Written from its raw parts (<see cref="ParquetGroupWriter.WriteListAsync{T}"/>).
    /// </summary>
    public static ParquetColumn List<T>(string name)
    {
        var element = new DataField<T>("element", nullable: false);
        var list = new ListField(name, element);
        _ = new ParquetSchema(list); // a schema sets the element's levels
        return new ParquetColumn(element, list);
    }

    private static ParquetColumn Flat(DataField field)
    {
        _ = new ParquetSchema(field);
        return new ParquetColumn(field, field);
    }

    /// <summary>Parquet.Net reports BYTE_ARRAY columns read from a file as ReadOnlyMemory (of bytes, or chars for strings).</summary>
    private static ParquetValueType TypeOf(Type t) =>
        t == typeof(int) ? ParquetValueType.Int32
        : t == typeof(long) ? ParquetValueType.Int64
        : t == typeof(float) ? ParquetValueType.Float
        : t == typeof(double) ? ParquetValueType.Double
        : t == typeof(bool) ? ParquetValueType.Boolean
        : t == typeof(string) || t == typeof(ReadOnlyMemory<char>) ? ParquetValueType.String
        : t == typeof(byte[]) || t == typeof(ReadOnlyMemory<byte>) ? ParquetValueType.Binary
        : ParquetValueType.Other;
}
