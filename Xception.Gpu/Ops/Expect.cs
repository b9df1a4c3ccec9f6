namespace Xception.Gpu.Ops;

/// <summary>
/// Argument checks shared by the ops; each failure names the op and the tensor, with both shapes or both devices.
/// </summary>
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

    /// <summary>
    /// Every tensor an op reads or writes must live on the op's device. A tensor of another device holds a
    /// view into another accelerator's memory: on a GPU the kernel would read through a foreign pointer; between
    /// two CPU devices it happens to work, which would hide the mistake until the same code runs on a GPU.
    /// The check is a reference compare per argument, nothing next to a kernel launch.
    /// </summary>
    public static void Device(string op, Device d, params ReadOnlySpan<(string Name, Tensor<float> Tensor)> tensors)
    {
        foreach (var (name, t) in tensors) Device(op, d, name, t);
    }

    /// <summary>The same check for one tensor of any element type (labels, argmax indices).</summary>
    public static void Device<T>(string op, Device d, string name, Tensor<T> t) where T : unmanaged
    {
        if (ReferenceEquals(t.Device, d)) return;
        // Two CPU devices print alike; say that the tensor's is another one, or the message reads as a contradiction.
        string other = t.Device.ToString() == d.ToString() ? $"another device opened as {t.Device}" : t.Device.ToString();
        throw new OpArgumentException(op, $"{name} {t.Shape} is on {other}, but the op runs on {d}");
    }
}
