namespace Xception.Gpu.Runtime;

using ILGPU;
using ILGPU.Runtime;

/// <summary>A device buffer with a shape. Activations are NHWC; weights keep Keras' layouts.</summary>
public sealed class Tensor<T> : IDisposable where T : unmanaged
{
    readonly MemoryBuffer1D<T, Stride1D.Dense> buffer;
    readonly int generation;
    readonly bool owner = true;

    public Device Device { get; }
    public Shape Shape { get; }
    public int Length => Shape.Length;

    internal Tensor(Device device, Shape shape)
    {
        Device = device;
        Shape = shape;
        generation = device.Generation;
        try
        {
            buffer = device.Accelerator.Allocate1D<T>(shape.Length);
        }
        catch (Exception e) when (e is not XceptionException)
        {
            long bytes = (long)shape.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
            throw new DeviceOutOfMemoryException(device, bytes, $"out of memory on {device}: a tensor {shape} needs {bytes / (1 << 20)} MiB", e);
        }
    }

    Tensor(Tensor<T> source, Shape shape)
    {
        Device = source.Device;
        Shape = shape;
        generation = source.generation;
        buffer = source.buffer;
        owner = false;
    }

    /// <summary>Values this tensor's memory can hold (at least <see cref="Length"/>; more for a view).</summary>
    public long Capacity => buffer.Length;

    /// <summary>
    /// A view of this tensor's memory with another shape of at most <see cref="Capacity"/> values; it shares
    /// the memory (disposing the view frees nothing). Activation buffers are reused across layers this way.
    /// </summary>
    public Tensor<T> As(params int[] shape)
    {
        var s = new Shape(shape);
        if (s.Length > buffer.Length)
            throw new ShapeException("view", $"shape {s} needs {s.Length} values, the memory holds {buffer.Length}");
        return new Tensor<T>(this, s);
    }

    /// <summary>The device view for kernel launches.</summary>
    public ArrayView<T> View
    {
        get
        {
            if (generation != Device.Generation)
                throw new DeviceException($"tensor {Shape} belongs to a context of {Device} that was recreated after a kernel failed to compile");
            return buffer.View.AsContiguous().SubView(0, Length);
        }
    }

    public void Zero() => View.MemSetToZero();

    public void CopyFrom(ReadOnlySpan<T> data)
    {
        if (data.Length != Length)
            throw new ShapeException("copy", $"tensor {Shape} holds {Length} values, got {data.Length}");
        View.CopyFromCPU(data);
    }

    public T[] ToArray()
    {
        var a = new T[Length];
        View.CopyToCPU(a);
        return a;
    }

    /// <summary>Copies the values to host memory (exactly <see cref="Length"/> of them).</summary>
    public void CopyTo(Span<T> host)
    {
        if (host.Length != Length)
            throw new ShapeException("copy", $"tensor {Shape} holds {Length} values, the host span {host.Length}");
        View.CopyToCPU(host);
    }

    /// <summary>Copies this tensor's values into <paramref name="target"/> on the same device.</summary>
    public void CopyTo(Tensor<T> target)
    {
        if (target.Length != Length)
            throw new ShapeException("copy", $"tensor {Shape} cannot be copied into {target.Shape}");
        View.CopyTo(target.View);
    }

    public void Dispose()
    {
        if (owner) buffer.Dispose();
    }

    public override string ToString() => $"Tensor<{typeof(T).Name}>{Shape} on {Device.Id}";
}

/// <summary>Factories for tensors.</summary>
public static class Tensor
{
    public static Tensor<float> Zeros(Device d, params int[] shape) => Zeros<float>(d, shape);

    public static Tensor<T> Zeros<T>(Device d, params int[] shape) where T : unmanaged
    {
        var t = new Tensor<T>(d, new Shape(shape));
        t.Zero();
        return t;
    }

    public static Tensor<T> From<T>(Device d, T[] data, params int[] shape) where T : unmanaged
    {
        var t = new Tensor<T>(d, new Shape(shape));
        t.CopyFrom(data);
        return t;
    }

    public static Tensor<float> From(Device d, float[] data, params int[] shape) => From<float>(d, data, shape);
}
