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
    /// <summary>
    /// The largest header accepted, the limit of the format's reference implementation: a larger length
    /// field is damage, and reading it would allocate whatever a corrupted file claims.
    /// </summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>A tensor's entry in the header, checked against the file: its byte range lies in the data section.</summary>
    public sealed record Entry(string Name, int[] Shape, long Begin, long End)
    {
        public long Count => (End - Begin) / 4;
    }

    /// <summary>The validated header: the tensors in file order, the metadata, where the data section starts.</summary>
    public sealed record Header(List<Entry> Tensors, Dictionary<string, string> Metadata, long DataStart);

    public static void Write(string path, IEnumerable<NamedTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var list = tensors.ToList();
        var header = new JsonObject { ["__metadata__"] = new JsonObject(metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))) };
        long offset = 0;
        foreach (var t in list)
        {
            if (t.Shape.Aggregate(1L, (a, b) => a * b) != t.Data.Length)
                throw new WeightsException($"tensor '{t.Name}' has {t.Data.Length} values for shape ({string.Join(", ", t.Shape)})");
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

    /// <summary>Every tensor and the metadata, after the whole header was checked against the file.</summary>
    public static (List<NamedTensor> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        using var f = Open(path);
        var header = ReadHeader(f, path);
        var tensors = new List<NamedTensor>(header.Tensors.Count);
        try
        {
            foreach (var e in header.Tensors)
            {
                // The range was checked to lie inside the file, so this allocates no more than the file holds.
                var data = new float[e.Count];
                f.Position = header.DataStart + e.Begin;
                f.ReadExactly(MemoryMarshal.AsBytes(data.AsSpan()));
                tensors.Add(new NamedTensor(e.Name, e.Shape, data));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WeightsException($"'{path}' could not be read: {e.Message}", e);
        }
        return (tensors, header.Metadata);
    }

    /// <summary>The checked header alone (no tensor data is read): enough to learn a checkpoint's configuration.</summary>
    public static Header ReadHeader(string path)
    {
        using var f = Open(path);
        return ReadHeader(f, path);
    }

    static FileStream Open(string path)
    {
        WeightsFiles.RequireFile(path);
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WeightsException($"'{path}' could not be opened: {e.Message}", e);
        }
    }

    static Header ReadHeader(FileStream f, string path)
    {
        WeightsException Bad(string what) => new($"'{path}' is not a valid safetensors checkpoint: {OneLine(what)}");
        long length = f.Length;
        if (length < 10) throw Bad($"only {length} bytes (expected an 8-byte header length and a JSON header)");
        Span<byte> lengthField = stackalloc byte[8];
        byte[] json;
        try
        {
            f.ReadExactly(lengthField);
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lengthField);
            if (n > MaxHeaderBytes)
                throw Bad($"its header length field says {n} bytes, more than the format's limit of {MaxHeaderBytes} (damaged, or not a checkpoint)");
            if ((long)n > length - 8)
                throw Bad($"its header length field says {n} bytes, but the file has only {length - 8} after it (truncated?)");
            json = new byte[n];
            f.ReadExactly(json);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WeightsException($"'{path}' could not be read: {e.Message}", e);
        }
        if (json.Length < 2 || json[0] != (byte)'{') throw Bad("its header does not start with '{' (expected a JSON object)");
        long dataStart = 8 + json.Length, dataBytes = length - dataStart;
        // The JSON reader checks UTF-8 only when a string is decoded, and then throws its own exception type.
        if (!System.Text.Unicode.Utf8.IsValid(json)) throw Bad("its header is not valid UTF-8 text");

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw Bad($"its header is not valid JSON ({OneLine(e.Message)})");
        }
        using (doc)
        {
            var meta = new Dictionary<string, string>();
            var entries = new List<Entry>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                // The format is a JSON map: a name given twice is ambiguous (which range is the tensor?), so refuse it.
                if (!seen.Add(prop.Name)) throw Bad($"its header names '{prop.Name}' twice");
                if (prop.Name == "__metadata__") ReadMetadata(prop.Value, meta, Bad);
                else entries.Add(ReadEntry(prop.Name, prop.Value, dataBytes, Bad));
            }
            CheckCoverage(entries, dataBytes, Bad);
            return new Header(entries, meta, dataStart);
        }
    }

    /// <summary>Names and values come from the file: a control character in one must not break the message's single line.</summary>
    static string OneLine(string s) => string.Concat(s.Select(c => char.IsControl(c) ? ' ' : c));

    static void ReadMetadata(JsonElement node, Dictionary<string, string> meta, Func<string, WeightsException> bad)
    {
        if (node.ValueKind != JsonValueKind.Object)
            throw bad($"__metadata__ is {Kind(node)}, expected an object of strings");
        foreach (var kv in node.EnumerateObject())
        {
            if (kv.Value.ValueKind != JsonValueKind.String)
                throw bad($"__metadata__ '{kv.Name}' is {Kind(kv.Value)}, expected a string");
            if (!meta.TryAdd(kv.Name, kv.Value.GetString()!)) throw bad($"__metadata__ names '{kv.Name}' twice");
        }
    }

    static Entry ReadEntry(string name, JsonElement node, long dataBytes, Func<string, WeightsException> bad)
    {
        if (node.ValueKind != JsonValueKind.Object)
            throw bad($"tensor '{name}' is {Kind(node)}, expected an object with dtype, shape and data_offsets");
        JsonElement Field(string key) =>
            node.TryGetProperty(key, out var v) ? v : throw bad($"tensor '{name}' has no {key}");

        var dtype = Field("dtype");
        if (dtype.ValueKind != JsonValueKind.String) throw bad($"tensor '{name}': dtype is {Kind(dtype)}, expected a string such as \"F32\"");
        if (dtype.GetString() != "F32") throw bad($"tensor '{name}' is {dtype.GetString()}; only F32 is supported");

        var shapeNode = Field("shape");
        if (shapeNode.ValueKind != JsonValueKind.Array) throw bad($"tensor '{name}': shape is {Kind(shapeNode)}, expected an array of sizes");
        var shape = new int[shapeNode.GetArrayLength()];
        // The product is kept at most the data section's size (else it cannot fit), so it never overflows.
        long count = 1;
        bool tooLarge = false;
        int i = 0;
        foreach (var d in shapeNode.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out var dim) || dim < 0)
                throw bad($"tensor '{name}': shape {Raw(shapeNode)} holds {Raw(d)}, expected sizes from 0 to {int.MaxValue}");
            shape[i++] = dim;
            if (!tooLarge) { count *= dim; tooLarge = count > dataBytes; }
        }
        if (shape.Contains(0)) (count, tooLarge) = (0, false);
        if (tooLarge)
            throw bad($"tensor '{name}' has shape ({string.Join(", ", shape)}), more values than the {dataBytes} bytes of data can hold");

        var off = Field("data_offsets");
        if (off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2
            || off.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.Number || !x.TryGetInt64(out var v) || v < 0))
            throw bad($"tensor '{name}': data_offsets is {Raw(off)}, expected [begin, end], two byte offsets from 0");
        long begin = off[0].GetInt64(), end = off[1].GetInt64();
        if (begin > end || end > dataBytes)
            throw bad($"tensor '{name}' has data_offsets [{begin}, {end}], outside the data section of {dataBytes} bytes (truncated or damaged?)");
        if (end - begin != 4 * count)
            throw bad($"tensor '{name}' has {end - begin} bytes (data_offsets [{begin}, {end}]), but shape ({string.Join(", ", shape)}) of F32 needs {4 * count}");
        return new Entry(name, shape, begin, end);
    }

    /// <summary>
    /// The ranges must tile the data section: no byte shared by two tensors (one write would change both) and
    /// none that belongs to no tensor, as the format requires.
    /// </summary>
    static void CheckCoverage(List<Entry> entries, long dataBytes, Func<string, WeightsException> bad)
    {
        long at = 0;
        Entry? previous = null;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin < at)
                throw bad($"tensor '{e.Name}' (bytes {e.Begin}..{e.End}) overlaps tensor '{previous!.Name}' (bytes {previous.Begin}..{previous.End})");
            if (e.Begin > at)
                throw bad($"bytes {at}..{e.Begin} of the data section belong to no tensor (expected the tensors to follow each other)");
            at = e.End;
            previous = e;
        }
        if (at != dataBytes)
            throw bad($"the tensors end at byte {at} of the data section, which has {dataBytes} (expected them to fill it exactly)");
    }

    static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.Null => "null",
        _ => "a boolean",
    };

    /// <summary>A JSON value as written, cut short: enough to recognise it in a one-line message.</summary>
    static string Raw(JsonElement e)
    {
        var s = OneLine(e.GetRawText());
        return s.Length > 60 ? s[..57] + "..." : s;
    }
}
