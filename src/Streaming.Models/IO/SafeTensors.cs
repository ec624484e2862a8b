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

    /// <summary>Reads every tensor (on the CPU) and the metadata.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Load(string path)
    {
        byte[] all = File.ReadAllBytes(path);
        if (all.Length < 8) throw new Streaming.Core.StreamingException($"{path}: not a safetensors file (too short)");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(all);
        if (headerLength > (ulong)(all.Length - 8)) throw new Streaming.Core.StreamingException($"{path}: not a safetensors file (bad header length)");
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(all.AsMemory(8, (int)headerLength));
        }
        catch (JsonException e)
        {
            throw new Streaming.Core.StreamingException($"{path}: not a safetensors file ({e.Message})", e);
        }
        using (doc)
        {
            int dataStart = 8 + (int)headerLength;
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    foreach (var m in entry.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString() ?? "";
                    continue;
                }
                string dtype = entry.Value.GetProperty("dtype").GetString()!;
                long[] shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                var type = DTypes.FirstOrDefault(kv => kv.Value == dtype).Key;
                if (!DTypes.ContainsValue(dtype)) throw new Streaming.Core.StreamingException($"{path}: tensor {entry.Name} has unsupported dtype {dtype}");
                var span = all.AsSpan(dataStart + (int)offsets[0], (int)(offsets[1] - offsets[0]));
                var t = empty(shape, type);
                span.CopyTo(t.bytes);
                tensors[entry.Name] = t;
            }
        }
        return (tensors, metadata);
    }
}
