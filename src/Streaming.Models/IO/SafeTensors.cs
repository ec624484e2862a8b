using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Models.IO;

/// <summary>
/// The safetensors format (an 8-byte little-endian header length, a JSON header of
/// name -> {dtype, shape, data_offsets}, then raw little-endian tensor bytes), readable by Python's
/// safetensors and by torch. Tensors are written in name order, so equal tensors give equal files.
/// </summary>
public static class SafeTensors
{
    private static readonly Dictionary<ScalarType, string> DTypes = new()
    {
        [ScalarType.Float32] = "F32", [ScalarType.Float64] = "F64", [ScalarType.Float16] = "F16", [ScalarType.BFloat16] = "BF16",
        [ScalarType.Int64] = "I64", [ScalarType.Int32] = "I32", [ScalarType.Int16] = "I16", [ScalarType.Int8] = "I8",
        [ScalarType.Byte] = "U8", [ScalarType.Bool] = "BOOL",
    };

    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var names = tensors.Keys.Order(StringComparer.Ordinal).ToList();
        var header = new Dictionary<string, object>(StringComparer.Ordinal);
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => kv.Value);
        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var name in names)
        {
            var t = tensors[name];
            if (!DTypes.TryGetValue(t.dtype, out var dtype)) throw new NotSupportedException($"{name}: dtype {t.dtype} is not supported by safetensors here");
            using var cpu = t.detach().cpu().contiguous();
            byte[] bytes = cpu.bytes.ToArray();
            blobs.Add(bytes);
            header[name] = new { dtype, shape = t.shape, data_offsets = new[] { offset, offset + bytes.Length } };
            offset += bytes.Length;
        }
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(header);
        int padded = (json.Length + 7) / 8 * 8;
        string temp = Streaming.Core.AtomicFile.TempFor(path);
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
            file.Write(len);
            file.Write(json);
            for (int i = json.Length; i < padded; i++) file.WriteByte((byte)' ');
            foreach (var b in blobs) file.Write(b);
            file.Flush(flushToDisk: true);
        }
        Streaming.Core.AtomicFile.Rename(temp, path);
    }

    private static readonly Dictionary<string, int> ElementSizes = new(StringComparer.Ordinal)
    {
        ["F32"] = 4, ["F64"] = 8, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
    };

    /// <summary>One tensor's entry in the header, checked.</summary>
    private readonly record struct Entry(string Name, ScalarType Type, long[] Shape, long Start, long End);

    /// <summary>
    /// Reads every tensor (on the CPU) and the metadata. The header is checked before any tensor is made, since
    /// weights may come from strangers: each tensor's bytes must match its dtype and shape exactly, lie inside the
    /// file's data, and not overlap another's; sizes that would overflow are refused.
    /// </summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Load(string path)
    {
        byte[] all = File.ReadAllBytes(path);
        if (all.Length < 8) throw Bad(path, "too short for a header");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(all);
        if (headerLength > (ulong)(all.Length - 8)) throw Bad(path, $"its header length ({headerLength}) runs past the end of the file ({all.Length} bytes)");
        int dataStart = 8 + (int)headerLength;
        long dataLength = all.Length - dataStart;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<Entry>();
        try
        {
            using var doc = JsonDocument.Parse(all.AsMemory(8, (int)headerLength));
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, "its header is not a JSON object");
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    if (entry.Value.ValueKind != JsonValueKind.Object) throw Bad(path, "__metadata__ is not an object");
                    foreach (var m in entry.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : throw Bad(path, $"metadata {m.Name} is not a string");
                    continue;
                }
                entries.Add(ReadEntry(path, entry, dataLength));
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw Bad(path, $"its header is malformed ({e.Message})", e);
        }
        // No two tensors may share bytes.
        var sorted = entries.OrderBy(e => e.Start).ThenBy(e => e.End).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Start < sorted[i - 1].End)
                throw Bad(path, $"tensors {sorted[i - 1].Name} and {sorted[i].Name} overlap (bytes {sorted[i - 1].Start}-{sorted[i - 1].End} and {sorted[i].Start}-{sorted[i].End})");

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            var t = empty(e.Shape, e.Type);
            all.AsSpan(dataStart + (int)e.Start, (int)(e.End - e.Start)).CopyTo(t.bytes);
            tensors[e.Name] = t;
        }
        return (tensors, metadata);
    }

    private static Entry ReadEntry(string path, JsonProperty entry, long dataLength)
    {
        string name = entry.Name;
        if (entry.Value.ValueKind != JsonValueKind.Object) throw Bad(path, $"tensor {name}: its entry is not an object");
        string dtype = entry.Value.GetProperty("dtype").GetString() ?? "";
        if (!ElementSizes.TryGetValue(dtype, out int size)) throw Bad(path, $"tensor {name} has unsupported dtype {dtype}");
        var type = DTypes.First(kv => kv.Value == dtype).Key;
        var shapeJson = entry.Value.GetProperty("shape");
        if (shapeJson.GetArrayLength() > 16) throw Bad(path, $"tensor {name} has {shapeJson.GetArrayLength()} dimensions");
        long[] shape = shapeJson.EnumerateArray().Select(d => d.GetInt64()).ToArray();
        long bytes = size;
        foreach (long d in shape)
        {
            if (d < 0) throw Bad(path, $"tensor {name} has a negative dimension ({d})");
            if (d > 0 && bytes > dataLength / d) throw Bad(path, $"tensor {name}: shape [{string.Join(", ", shape)}] needs more bytes than the file has");
            bytes *= d;
        }
        var offsets = entry.Value.GetProperty("data_offsets");
        if (offsets.GetArrayLength() != 2) throw Bad(path, $"tensor {name}: data_offsets must be [begin, end]");
        long begin = offsets[0].GetInt64(), end = offsets[1].GetInt64();
        if (begin < 0 || end < begin || end > dataLength)
            throw Bad(path, $"tensor {name}: data_offsets [{begin}, {end}] lie outside the file's {dataLength} bytes of data");
        if (end - begin != bytes)
            throw Bad(path, $"tensor {name}: data_offsets [{begin}, {end}] span {end - begin} bytes, but {dtype} [{string.Join(", ", shape)}] is {bytes}");
        return new Entry(name, type, shape, begin, end);
    }

    private static Streaming.Core.StreamingException Bad(string path, string why, Exception? inner = null) =>
        inner is null ? new($"{path}: not a usable safetensors file: {why}") : new($"{path}: not a usable safetensors file: {why}", inner);
}
