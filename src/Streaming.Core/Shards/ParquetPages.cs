using System.Buffers.Binary;

namespace Streaming.Core.Shards;

/// <summary>
/// The little of the Parquet format that the page reader (<see cref="PageColumnReader"/>, scoring's fast path) reads
/// itself: page headers (Thrift compact protocol), Snappy, and PLAIN byte arrays. Enough for image shards as this engine
/// writes them; anything else is left to Parquet.Net (the page reader declines a column chunk with a dictionary, another
/// encoding or codec, or nullable values).
/// </summary>
internal static class ParquetPages
{
    public const int DataPage = 0, DictionaryPage = 2, DataPageV2 = 3;

    /// <summary>What a page header says (the fields the fast path uses; <see cref="Supported"/> false when it cannot read the page itself).</summary>
    public record struct Header(int Type, int UncompressedSize, int CompressedSize, int NumValues, int Encoding,
        int DefinitionLevelsLength, int RepetitionLevelsLength, bool IsCompressed, int HeaderLength)
    {
        public readonly bool Supported => Type is DataPage or DataPageV2 && Encoding == 0 && NumValues >= 0 && CompressedSize >= 0 && UncompressedSize >= 0;
    }

    /// <summary>Parses a page header at the start of <paramref name="data"/>.</summary>
    /// <exception cref="InvalidDataException">Not a page header.</exception>
    public static Header ReadHeader(ReadOnlySpan<byte> data)
    {
        var r = new ThriftReader(data);
        var h = new Header { Type = -1, Encoding = -1, IsCompressed = true };
        short last = 0;
        while (true)
        {
            var (type, id) = r.FieldHeader(ref last);
            if (type == 0) break;
            switch (id)
            {
                case 1 when type == 5: h.Type = r.I32(); break;
                case 2 when type == 5: h.UncompressedSize = r.I32(); break;
                case 3 when type == 5: h.CompressedSize = r.I32(); break;
                case 5 when type == 12: ReadDataPageHeader(ref r, ref h, v2: false); break;
                case 8 when type == 12: ReadDataPageHeader(ref r, ref h, v2: true); break;
                default: r.Skip(type); break;
            }
        }
        h.HeaderLength = r.Position;
        return h;
    }

    private static void ReadDataPageHeader(ref ThriftReader r, ref Header h, bool v2)
    {
        short last = 0;
        while (true)
        {
            var (type, id) = r.FieldHeader(ref last);
            if (type == 0) return;
            switch (v2, id)
            {
                case (_, 1) when type == 5: h.NumValues = r.I32(); break;
                case (false, 2) when type == 5: h.Encoding = r.I32(); break;
                case (true, 4) when type == 5: h.Encoding = r.I32(); break;
                case (true, 5) when type == 5: h.DefinitionLevelsLength = r.I32(); break;
                case (true, 6) when type == 5: h.RepetitionLevelsLength = r.I32(); break;
                case (true, 7) when type is 1 or 2: h.IsCompressed = type == 1; break;
                default: r.Skip(type); break;
            }
        }
    }

    /// <summary>The Thrift compact protocol, as far as page headers and footer checks need it; every count is checked against the bytes left.</summary>
    internal ref struct ThriftReader(ReadOnlySpan<byte> data)
    {
        private const int MaxDepth = 64;
        private readonly ReadOnlySpan<byte> _data = data;
        private int _depth;
        public int Position;

        private byte Byte() => Position < _data.Length ? _data[Position++] : throw new InvalidDataException("Thrift data runs past its end");

        /// <summary>A count of elements, each at least one byte: at most the bytes left.</summary>
        private long Count(long count) => count >= 0 && count <= _data.Length - Position ? count
            : throw new InvalidDataException($"Thrift data declares {count:N0} elements with {_data.Length - Position:N0} bytes left");

        /// <summary>A list or set header: the element type and the count, checked against the bytes left.</summary>
        public (int Element, long Count) ListHeader()
        {
            byte h = Byte();
            ulong declared = h >> 4 == 15 ? Varint() : (ulong)(h >> 4);
            return (h & 0x0f, Count(declared > long.MaxValue ? -1 : (long)declared));
        }

        private ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                byte b = Byte();
                value |= (ulong)(b & 0x7f) << shift;
                if ((b & 0x80) == 0) return value;
            }
            throw new InvalidDataException("a varint in a page header is too long");
        }

        private long ZigZag() { ulong v = Varint(); return (long)(v >> 1) ^ -(long)(v & 1); }

        public int I32() => checked((int)ZigZag());

        /// <summary>The next field's type (0: the end of the struct) and id.</summary>
        public (int Type, short Id) FieldHeader(ref short last)
        {
            byte b = Byte();
            if (b == 0) return (0, 0); // STOP is a zero byte; a zero type with a delta is no field at all
            int type = b & 0x0f;
            if (type == 0) throw new InvalidDataException($"a Thrift field header 0x{b:x2} has no type");
            int delta = b >> 4;
            last = delta != 0 ? (short)(last + delta) : checked((short)ZigZag());
            return (type, last);
        }

        public void Skip(int type)
        {
            switch (type)
            {
                case 1 or 2: return; // booleans live in the field header
                case 3: Byte(); return;
                case 4 or 5 or 6: Varint(); return;
                case 7:
                    if (Position + 8 > _data.Length) throw new InvalidDataException("Thrift data runs past its end");
                    Position += 8;
                    return;
                case 8:
                    ulong raw = Varint();
                    if (raw > (ulong)(_data.Length - Position)) throw new InvalidDataException("a Thrift binary field runs past its end");
                    Position += (int)raw;
                    return;
                case 9 or 10:
                {
                    var (element, size) = ListHeader();
                    Enter();
                    for (long i = 0; i < size; i++) SkipElement(element);
                    Leave();
                    return;
                }
                case 11:
                {
                    ulong declared = Varint();
                    long entries = Count(declared > long.MaxValue ? -1 : (long)declared);
                    if (entries == 0) return;
                    byte kv = Byte();
                    Enter();
                    for (long i = 0; i < entries; i++) { SkipElement(kv >> 4); SkipElement(kv & 0x0f); }
                    Leave();
                    return;
                }
                case 12:
                {
                    Enter();
                    short last = 0;
                    while (true)
                    {
                        var (t, _) = FieldHeader(ref last);
                        if (t == 0) break;
                        Skip(t);
                    }
                    Leave();
                    return;
                }
                default:
                    throw new InvalidDataException($"a Thrift field of unknown type {type}");
            }
        }

        public void Enter()
        {
            if (++_depth > MaxDepth) throw new InvalidDataException($"Thrift data nests deeper than {MaxDepth}");
        }

        public void Leave() => _depth--;

        public void SkipElement(int type)
        {
            if (type is 1 or 2) { Byte(); return; } // a boolean element is a byte
            Skip(type);
        }
    }

    /// <summary>Decompresses raw Snappy (as Parquet stores it) into <paramref name="output"/>, which must be exactly the uncompressed size.</summary>
    public static void Unsnappy(ReadOnlySpan<byte> input, Span<byte> output)
    {
        int i = 0, o = 0;
        ulong length = 0;
        for (int shift = 0; ; shift += 7)
        {
            if (i >= input.Length || shift > 35) throw new InvalidDataException("snappy: a bad length");
            byte b = input[i++];
            length |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) break;
        }
        if (length != (ulong)output.Length) throw new InvalidDataException($"snappy: {length} bytes where the page says {output.Length}");
        while (i < input.Length)
        {
            byte tag = input[i++];
            int len, offset;
            switch (tag & 3)
            {
                case 0:
                    len = tag >> 2;
                    if (len >= 60)
                    {
                        int extra = len - 59;
                        if (i + extra > input.Length) throw new InvalidDataException("snappy: a literal runs past the input");
                        len = 0;
                        for (int k = 0; k < extra; k++) len |= input[i + k] << (8 * k);
                        i += extra;
                    }
                    len++;
                    if (len <= 0 || i + len > input.Length || o + len > output.Length) throw new InvalidDataException("snappy: a literal runs past its bounds");
                    input.Slice(i, len).CopyTo(output[o..]);
                    i += len;
                    o += len;
                    continue;
                case 1:
                    if (i >= input.Length) throw new InvalidDataException("snappy: a copy runs past the input");
                    len = 4 + ((tag >> 2) & 7);
                    offset = ((tag >> 5) << 8) | input[i++];
                    break;
                case 2:
                    if (i + 2 > input.Length) throw new InvalidDataException("snappy: a copy runs past the input");
                    len = 1 + (tag >> 2);
                    offset = BinaryPrimitives.ReadUInt16LittleEndian(input[i..]);
                    i += 2;
                    break;
                default:
                    if (i + 4 > input.Length) throw new InvalidDataException("snappy: a copy runs past the input");
                    len = 1 + (tag >> 2);
                    offset = (int)BinaryPrimitives.ReadUInt32LittleEndian(input[i..]);
                    i += 4;
                    break;
            }
            if (offset <= 0 || offset > o || o + len > output.Length) throw new InvalidDataException("snappy: a copy reaches outside the output");
            if (offset >= len)
            {
                output.Slice(o - offset, len).CopyTo(output[o..]);
            }
            else
            {
                for (int k = 0; k < len; k++) output[o + k] = output[o - offset + k]; // overlapping: a run
            }
            o += len;
        }
        if (o != output.Length) throw new InvalidDataException($"snappy: {o} bytes out where the page says {output.Length}");
    }
}
