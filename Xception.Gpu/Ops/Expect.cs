namespace Xception.Gpu.Ops;

/// <summary>Shape checks shared by the ops; each failure names the op, the tensor and both shapes.</summary>
internal static class Expect
{
    public static void Rank<T>(string op, string name, Tensor<T> t, int rank) where T : unmanaged
    {
        if (t.Shape.Rank != rank)
            throw new ShapeException(op, $"{name} must have rank {rank}, got shape {t.Shape}");
    }

    /// <summary>Checks every dimension; -1 accepts any size.</summary>
    public static void Dims<T>(string op, string name, Tensor<T> t, params int[] dims) where T : unmanaged
    {
        bool ok = t.Shape.Rank == dims.Length;
        for (int i = 0; ok && i < dims.Length; i++) ok = dims[i] < 0 || dims[i] == t.Shape[i];
        if (!ok)
            throw new ShapeException(op, $"{name} must have shape ({string.Join(", ", dims.Select(d => d < 0 ? "any" : d.ToString()))}), got {t.Shape}");
    }

    public static void SameShape<T, U>(string op, string name, Tensor<T> t, string otherName, Tensor<U> other)
        where T : unmanaged where U : unmanaged
    {
        if (!t.Shape.Equals(other.Shape))
            throw new ShapeException(op, $"{name} {t.Shape} must have the shape of {otherName} {other.Shape}");
    }

    public static void Device<T>(string op, Device d, params Tensor<T>[] tensors) where T : unmanaged
    {
        foreach (var t in tensors)
            if (!ReferenceEquals(t.Device, d))
                throw new OpArgumentException(op, $"tensor {t.Shape} lives on {t.Device.Id}, the op runs on {d.Id}");
    }
}
