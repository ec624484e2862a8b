using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Streaming.Models.IO;

/// <summary>
/// Reads a <c>torch.save</c> file's pickle before anything unpickles it, and refuses one that imports anything a state
/// dict has no use for: a pickle can name any Python callable (<c>os.system</c>, <c>builtins.eval</c>) for the
/// unpickler to call. The allow-list is PyTorch's own for <c>torch.load(weights_only=True)</c>, cut to what state
/// dicts use: ordered dicts, tensor and parameter rebuilders, typed storages, and <c>_codecs.encode</c> for bytes.
/// Every opcode is walked with its argument, so nothing can hide inside one; an opcode it does not know is refused.
/// </summary>
public static class PickleGuard
{
    private static readonly HashSet<string> Allowed = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch.Size", "_codecs.encode",
        "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.LongStorage",
        "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage", "torch.ByteStorage", "torch.BoolStorage",
        "torch.storage.UntypedStorage",
    };

    /// <summary>Throws a <see cref="Core.StreamingException"/> naming the file and the import when the file's pickle is not a plain state dict.</summary>
    public static void Check(string path)
    {
        ZipArchive zip;
        try
        {
            zip = ZipFile.OpenRead(path);
        }
        catch (InvalidDataException)
        {
            throw new Core.StreamingException($"{path}: not a torch.save zip file (the legacy format, from before PyTorch 1.6, is not read; load it in Python and save it again)");
        }
        using (zip)
        {
            var pickles = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) || e.FullName == "data.pkl").ToList();
            if (pickles.Count != 1) throw new Core.StreamingException($"{path}: a torch.save file has one data.pkl; this one has {pickles.Count}");
            var entry = pickles[0];
            if (entry.Length > 256L << 20) throw new Core.StreamingException($"{path}: its pickle is {entry.Length:N0} bytes; a state dict's is a few MB at most");
            var bytes = new byte[entry.Length];
            using (var s = entry.Open()) s.ReadExactly(bytes);
            string? bad = FirstDisallowed(bytes);
            if (bad is not null) throw new Core.StreamingException($"{path}: refused: its pickle {bad}, which a state dict has no use for (allowed: {string.Join(", ", Allowed.Order(StringComparer.Ordinal))})");
        }
    }

    /// <summary>What makes a pickle unsafe ("imports posix.system", "has unknown opcode 0xff at 12"), or null when it only imports allowed names.</summary>
    public static string? FirstDisallowed(ReadOnlySpan<byte> p)
    {
        var memo = new Dictionary<long, string?>();
        string? last = null, beforeLast = null; // the two most recent values pushed, when they are strings
        void Push(string? value)
        {
            beforeLast = last;
            last = value;
        }
        int at = 0;
        while (at < p.Length)
        {
            int opAt = at;
            byte op = p[at++];
            switch (op)
            {
                case (byte)'.': // STOP
                    return null;
                // No argument.
                case (byte)'(' or (byte)'0' or (byte)'1' or (byte)'2' or (byte)'N' or 0x88 or 0x89 or (byte)'Q' or (byte)'R' or (byte)'a'
                    or (byte)'e' or (byte)'b' or (byte)'d' or (byte)'}' or (byte)']' or (byte)')' or (byte)'l' or (byte)'o' or (byte)'s'
                    or (byte)'u' or (byte)'t' or 0x85 or 0x86 or 0x87 or 0x81 or 0x92 or 0x8f or 0x90 or 0x91 or 0x97 or 0x98:
                    Push(null);
                    break;
                case 0x94: // MEMOIZE
                    memo[memo.Count] = last;
                    break;
                case 0x93: // STACK_GLOBAL
                {
                    if (beforeLast is null || last is null) return $"imports a name it builds at run time (STACK_GLOBAL at {opAt})";
                    string name = $"{beforeLast}.{last}";
                    if (!Allowed.Contains(name)) return $"imports {name}";
                    Push(null);
                    break;
                }
                // Fixed-size arguments.
                case 0x80: at += 1; break; // PROTO
                case 0x95: at += 8; break; // FRAME
                case (byte)'K': at += 1; Push(null); break;
                case (byte)'M': at += 2; Push(null); break;
                case (byte)'J': at += 4; Push(null); break;
                case (byte)'G': at += 8; Push(null); break;
                case 0x82 or 0x83 or 0x84: // EXT1, EXT2, EXT4
                    return $"uses the extension registry (EXT at {opAt})";
                case (byte)'h': // BINGET
                    if (at + 1 > p.Length) return "ends inside an opcode";
                    Push(memo.GetValueOrDefault(p[at]));
                    at += 1;
                    break;
                case (byte)'j': // LONG_BINGET
                    if (at + 4 > p.Length) return "ends inside an opcode";
                    Push(memo.GetValueOrDefault(BinaryPrimitives.ReadUInt32LittleEndian(p[at..])));
                    at += 4;
                    break;
                case (byte)'q': // BINPUT
                    if (at + 1 > p.Length) return "ends inside an opcode";
                    memo[p[at]] = last;
                    at += 1;
                    break;
                case (byte)'r': // LONG_BINPUT
                    if (at + 4 > p.Length) return "ends inside an opcode";
                    memo[BinaryPrimitives.ReadUInt32LittleEndian(p[at..])] = last;
                    at += 4;
                    break;
                // Length-prefixed arguments; the text ones may name a module.
                case (byte)'X' or (byte)'T' or (byte)'B' or (byte)'U' or (byte)'C' or 0x8c or 0x8a or 0x8b or 0x8d or 0x8e or 0x96:
                {
                    int width = op switch { (byte)'U' or (byte)'C' or 0x8c or 0x8a => 1, 0x8d or 0x8e or 0x96 => 8, _ => 4 };
                    if (at + width > p.Length) return "ends inside an opcode";
                    ulong length = width switch { 1 => p[at], 4 => BinaryPrimitives.ReadUInt32LittleEndian(p[at..]), _ => BinaryPrimitives.ReadUInt64LittleEndian(p[at..]) };
                    at += width;
                    if (length > (ulong)(p.Length - at)) return $"has a length past its end at {opAt}";
                    bool text = op is (byte)'X' or 0x8c or 0x8d or (byte)'T' or (byte)'U';
                    Push(text ? Encoding.UTF8.GetString(p.Slice(at, (int)length)) : null);
                    at += (int)length;
                    break;
                }
                // Newline-terminated arguments.
                case (byte)'I' or (byte)'L' or (byte)'F' or (byte)'S' or (byte)'V' or (byte)'P':
                {
                    if (Line(p, ref at) is not string line) return "ends inside an opcode";
                    Push(op is (byte)'S' or (byte)'V' ? line.Trim('\'', '"') : null);
                    break;
                }
                case (byte)'g': // GET
                {
                    if (Line(p, ref at) is not string line || !long.TryParse(line, out long key)) return $"has a bad GET at {opAt}";
                    Push(memo.GetValueOrDefault(key));
                    break;
                }
                case (byte)'p': // PUT
                {
                    if (Line(p, ref at) is not string line || !long.TryParse(line, out long key)) return $"has a bad PUT at {opAt}";
                    memo[key] = last;
                    break;
                }
                case (byte)'c' or (byte)'i': // GLOBAL, INST: module and name on two lines
                {
                    if (Line(p, ref at) is not string module || Line(p, ref at) is not string name) return "ends inside an opcode";
                    if (!Allowed.Contains($"{module}.{name}")) return $"imports {module}.{name}";
                    Push(null);
                    break;
                }
                default:
                    return $"has unknown opcode 0x{op:x2} at {opAt}";
            }
        }
        return "has no STOP opcode";
    }

    private static string? Line(ReadOnlySpan<byte> p, ref int at)
    {
        int end = p[at..].IndexOf((byte)'\n');
        if (end < 0) return null;
        string line = Encoding.UTF8.GetString(p.Slice(at, end));
        at += end + 1;
        return line;
    }
}
