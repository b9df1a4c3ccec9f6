namespace Xception.Gpu.Runtime;

/// <summary>An immutable tensor shape. 4-D activations are NHWC, as in Keras.</summary>
public sealed class Shape : IEquatable<Shape>
{
    readonly int[] dims;

    public Shape(params int[] dims)
    {
        foreach (var d in dims)
            if (d <= 0) throw new ShapeException("shape", $"({string.Join(", ", dims)}) has a dimension that is not positive");
        this.dims = (int[])dims.Clone();
        long n = 1;
        foreach (var d in dims) n *= d;
        if (n > int.MaxValue) throw new ShapeException("shape", $"{this} has {n} elements; at most {int.MaxValue} fit one tensor");
        Length = (int)n;
    }

    public int Rank => dims.Length;
    public int this[int i] => dims[i < 0 ? dims.Length + i : i];
    /// <summary>Number of elements.</summary>
    public int Length { get; }
    public int[] ToArray() => (int[])dims.Clone();

    /// <summary>Rows when the tensor is seen as a matrix [rows, last dimension].</summary>
    public int Rows => Length / dims[^1];

    public bool Equals(Shape? o) => o is not null && dims.AsSpan().SequenceEqual(o.dims);
    public override bool Equals(object? o) => Equals(o as Shape);
    public override int GetHashCode() { var h = new HashCode(); foreach (var d in dims) h.Add(d); return h.ToHashCode(); }
    public override string ToString() => "(" + string.Join(", ", dims) + ")";
    public static implicit operator Shape(int[] d) => new(d);
}
