using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Xception.Gpu.IO;

/// <summary>One named float32 tensor of a safetensors file.</summary>
public sealed record NamedTensor(string Name, int[] Shape, float[] Data);

/// <summary>
/// The safetensors format: an 8-byte little-endian header length, a JSON header mapping each tensor name to
/// its dtype, shape and byte range (plus a string-to-string <c>__metadata__</c>), then the raw little-endian
/// data. Only float32 (F32) tensors are written and read.
/// </summary>
public static class SafeTensors
{
    public static void Write(string path, IEnumerable<NamedTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var list = tensors.ToList();
        var header = new JsonObject { ["__metadata__"] = new JsonObject(metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))) };
        long offset = 0;
        foreach (var t in list)
        {
            if (t.Shape.Aggregate(1L, (a, b) => a * b) != t.Data.Length)
                throw new XceptionException($"tensor '{t.Name}' has {t.Data.Length} values for shape ({string.Join(", ", t.Shape)})");
            long bytes = 4L * t.Data.Length;
            header[t.Name] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode?)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8; // keeps the data 8-byte aligned, as the format recommends
        AtomicFile.Write(path, s =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
            s.Write(len);
            s.Write(json);
            for (int i = json.Length; i < padded; i++) s.WriteByte((byte)' ');
            foreach (var t in list) s.Write(MemoryMarshal.AsBytes(t.Data.AsSpan())); // x86-64 and ARM64 are little-endian
        });
    }

    public static (List<NamedTensor> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        if (!File.Exists(path)) throw new WeightsException($"checkpoint '{path}' does not exist");
        var bytes = File.ReadAllBytes(path);
        string bad = $"'{path}' is not a safetensors checkpoint";
        if (bytes.Length < 10) throw new WeightsException($"{bad}: only {bytes.Length} bytes");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (n > (ulong)(bytes.Length - 8) || bytes[8] != (byte)'{')
            throw new WeightsException($"{bad} (or it is truncated): header of {n} bytes in a file of {bytes.Length}");
        JsonObject header;
        try
        {
            header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, (int)n))!.AsObject();
        }
        catch (JsonException e)
        {
            throw new WeightsException($"{bad}: its header is not valid JSON ({e.Message})", e);
        }
        long dataStart = 8 + (long)n;
        var meta = new Dictionary<string, string>();
        var tensors = new List<NamedTensor>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                foreach (var (k, v) in node!.AsObject()) meta[k] = v!.GetValue<string>();
                continue;
            }
            var o = node!.AsObject();
            string dtype = o["dtype"]!.GetValue<string>();
            if (dtype != "F32") throw new WeightsException($"'{path}': tensor '{name}' is {dtype}; only F32 is supported");
            var shape = o["shape"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
            var off = o["data_offsets"]!.AsArray().Select(x => x!.GetValue<long>()).ToArray();
            long count = shape.Aggregate(1L, (a, b) => a * b);
            if (off[1] - off[0] != 4 * count || dataStart + off[1] > bytes.Length)
                throw new WeightsException($"'{path}' is truncated or damaged: tensor '{name}' ({string.Join("x", shape)}) needs bytes {off[0]}..{off[1]} of the data, the file has {bytes.Length - dataStart}");
            var data = new float[count];
            MemoryMarshal.Cast<byte, float>(bytes.AsSpan((int)(dataStart + off[0]), (int)(4 * count))).CopyTo(data);
            tensors.Add(new NamedTensor(name, shape, data));
        }
        return (tensors, meta);
    }
}
