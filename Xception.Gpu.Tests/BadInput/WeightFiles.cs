using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace Xception.Gpu.Tests.BadInput;

/// <summary>Builds weight files byte by byte, valid or hostile, for the bad-input and fuzz tests.</summary>
internal static class WeightFiles
{
    /// <summary>A safetensors file from a header text as given (not re-serialised, so it can hold anything) and a data section.</summary>
    public static byte[] SafeTensors(string header, byte[] data)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)json.Length);
        json.CopyTo(b, 8);
        data.CopyTo(b, 8 + json.Length);
        return b;
    }

    /// <summary>The header and the data section of a safetensors file.</summary>
    public static (JsonObject Header, byte[] Data) Split(byte[] file)
    {
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return (JsonNode.Parse(Encoding.UTF8.GetString(file, 8, n))!.AsObject(), file[(8 + n)..]);
    }

    /// <summary>A copy of a valid checkpoint with its header edited and its data kept.</summary>
    public static byte[] Edit(byte[] file, Action<JsonObject> edit)
    {
        var (header, data) = Split(file);
        edit(header);
        return SafeTensors(header.ToJsonString(), data);
    }

    /// <summary>The checkpoint's metadata object (string values), to edit.</summary>
    public static JsonObject Meta(JsonObject header) => header["__metadata__"]!.AsObject();

    /// <summary>Where the 64-bit little-endian values <paramref name="dims"/> follow each other in a file (an HDF5 dataspace).</summary>
    public static List<int> FindDims(byte[] file, params ulong[] dims)
    {
        var pattern = new byte[8 * dims.Length];
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(pattern.AsSpan(8 * i), dims[i]);
        var at = new List<int>();
        for (int i = file.AsSpan().IndexOf(pattern); i >= 0;)
        {
            at.Add(i);
            int next = file.AsSpan(i + 1).IndexOf(pattern);
            i = next < 0 ? -1 : i + 1 + next;
        }
        return at;
    }
}
