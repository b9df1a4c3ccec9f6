using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace Xception.Gpu.IO.Onnx;

/// <summary>
/// The protobuf side of the export: an ONNX <see cref="GraphProto"/> being filled with nodes, float32
/// initializers and their attributes (OnnxSharp's classes, which are ONNX's onnx.proto generated for Google.Protobuf).
/// </summary>
internal sealed class OnnxGraph(string name)
{
    public GraphProto Proto { get; } = new() { Name = name };

    /// <summary>Adds a node of the default domain; returns its (single) output name.</summary>
    public string Node(string op, string name, IEnumerable<string> inputs, string output, string? doc = null, params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = name, DocString = doc ?? "" };
        n.Input.Add(inputs);
        n.Output.Add(output);
        n.Attribute.Add(attributes);
        Proto.Node.Add(n);
        return output;
    }

    /// <summary>Adds a float32 initializer (raw little-endian data) and returns its name.</summary>
    public string Initializer(string name, long[] dims, float[] values, string? doc = null)
    {
        if (dims.Aggregate(1L, (a, b) => a * b) != values.Length)
            throw new InvalidOperationException($"initializer {name}: {values.Length} values for dims ({string.Join(", ", dims)})");
        var t = new TensorProto
        {
            Name = name,
            DataType = (int)TensorProto.Types.DataType.Float,
            // x86-64 and ARM64 are little-endian, which is what raw_data holds.
            RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())),
            DocString = doc ?? "",
        };
        t.Dims.Add(dims);
        Proto.Initializer.Add(t);
        return name;
    }

    /// <summary>A float32 tensor value: its name and dimensions, each a fixed size or a symbolic name.</summary>
    public static ValueInfoProto Value(string name, IEnumerable<object?> dims, string? doc = null)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d switch
            {
                int v => new TensorShapeProto.Types.Dimension { DimValue = v },
                string p => new TensorShapeProto.Types.Dimension { DimParam = p },
                _ => new TensorShapeProto.Types.Dimension(), // unknown, unnamed
            });
        return new ValueInfoProto
        {
            Name = name,
            DocString = doc ?? "",
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.Add(values);
        return a;
    }

    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto String(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };
}
