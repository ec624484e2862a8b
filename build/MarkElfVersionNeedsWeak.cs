using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

/// <summary>
/// Sets VER_FLG_WEAK on the Elf64_Vernaux entries of the named versions in each ELF64 little-endian
/// shared library, but only for versions that the system's libstdc++ does not define.
/// </summary>
public class MarkElfVersionNeedsWeak : Task
{
    [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();
    [Required] public string Versions { get; set; } = "";

    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    private static readonly string[] LibstdcxxCandidates =
    {
        "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
        "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
    };

    public override bool Execute()
    {
        var wanted = Versions.Split(new[] { ';', ',' }, StringSplitOptions.RemoveEmptyEntries).Select(v => v.Trim()).ToList();
        var system = LibstdcxxCandidates.FirstOrDefault(File.Exists);
        var missing = new HashSet<string>();
        byte[] systemBytes = system is null ? Array.Empty<byte>() : File.ReadAllBytes(system);
        foreach (var v in wanted)
        {
            if (IndexOf(systemBytes, Encoding.ASCII.GetBytes(v + "\0")) < 0) missing.Add(v);
        }
        if (missing.Count == 0)
        {
            Log.LogMessage(MessageImportance.Low, $"{system} defines {string.Join(", ", wanted)}; nothing to patch.");
            return true;
        }
        foreach (var item in Files)
        {
            var path = item.ItemSpec;
            try
            {
                var bytes = File.ReadAllBytes(path);
                int changed = Patch(bytes, missing);
                if (changed > 0)
                {
                    var tmp = path + ".weak.tmp";
                    File.WriteAllBytes(tmp, bytes);
                    // Replace rather than overwrite in place: the output file may be a hard link into a package cache.
                    File.Delete(path);
                    File.Move(tmp, path);
                    Log.LogMessage(MessageImportance.High, $"Marked {changed} version need(s) ({string.Join(", ", missing)}) weak in {path}: the system libstdc++ lacks them.");
                }
            }
            catch (Exception e) when (e is IOException || e is InvalidDataException || e is UnauthorizedAccessException)
            {
                Log.LogError($"Could not patch version needs of {path}: {e.Message}");
            }
        }
        return !Log.HasLoggedErrors;
    }

    /// <summary>Returns how many entries changed (0 when already weak, so the step is idempotent).</summary>
    private static int Patch(byte[] b, HashSet<string> names)
    {
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (b[4] != 2 || b[5] != 1) throw new InvalidDataException("only ELF64 little-endian is handled");
        ulong shoff = BitConverter.ToUInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A);
        int shnum = BitConverter.ToUInt16(b, 0x3C);
        int changed = 0;
        for (int i = 0; i < shnum; i++)
        {
            int sh = checked((int)shoff + i * shentsize);
            if (BitConverter.ToUInt32(b, sh + 4) != ShtGnuVerneed) continue;
            int offset = checked((int)BitConverter.ToUInt64(b, sh + 24));
            int link = (int)BitConverter.ToUInt32(b, sh + 40);
            int count = (int)BitConverter.ToUInt32(b, sh + 44);
            int strtab = checked((int)BitConverter.ToUInt64(b, checked((int)shoff + link * shentsize) + 24));
            int need = offset;
            for (int n = 0; n < count; n++)
            {
                int cnt = BitConverter.ToUInt16(b, need + 2);
                int aux = need + (int)BitConverter.ToUInt32(b, need + 8);
                for (int a = 0; a < cnt; a++)
                {
                    string name = ReadCString(b, strtab + (int)BitConverter.ToUInt32(b, aux + 8));
                    if (names.Contains(name))
                    {
                        ushort flags = BitConverter.ToUInt16(b, aux + 4);
                        if ((flags & VerFlgWeak) == 0)
                        {
                            flags |= VerFlgWeak;
                            b[aux + 4] = (byte)(flags & 0xff);
                            b[aux + 5] = (byte)(flags >> 8);
                            changed++;
                        }
                    }
                    uint nextAux = BitConverter.ToUInt32(b, aux + 12);
                    if (nextAux == 0) break;
                    aux += (int)nextAux;
                }
                uint next = BitConverter.ToUInt32(b, need + 12);
                if (next == 0) break;
                need += (int)next;
            }
        }
        return changed;
    }

    private static string ReadCString(byte[] b, int at)
    {
        int end = Array.IndexOf(b, (byte)0, at);
        return Encoding.ASCII.GetString(b, at, end - at);
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        if (needle.Length == 0) return 0;
        for (int i = 0; i <= haystack.Length - needle.Length; i++)
        {
            if (haystack[i] != needle[0]) continue;
            int j = 1;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }
}
