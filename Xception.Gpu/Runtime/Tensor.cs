namespace Xception.Gpu;

using ILGPU;
using ILGPU.Runtime;

/// <summary>A device buffer with a shape. Activations are NHWC; weights keep Keras' layouts.</summary>
public sealed class Tensor<T> : IDisposable where T : unmanaged
{
    readonly MemoryBuffer1D<T, Stride1D.Dense> buffer;
    readonly int generation;

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
            throw new DeviceException($"out of memory on {device}: a tensor {shape} needs {bytes / (1 << 20)} MiB", e);
        }
    }

    /// <summary>The device view for kernel launches.</summary>
    public ArrayView<T> View
    {
        get
        {
            if (generation != Device.Generation)
                throw new DeviceException($"tensor {Shape} belongs to a context of {Device} that was recreated after a kernel failed to compile");
            return buffer.View.AsContiguous();
        }
    }

    public void Zero() => buffer.MemSetToZero();

    public void CopyFrom(ReadOnlySpan<T> data)
    {
        if (data.Length != Length)
            throw new ShapeException("copy", $"tensor {Shape} holds {Length} values, got {data.Length}");
        buffer.View.AsContiguous().CopyFromCPU(data);
    }

    public T[] ToArray()
    {
        var a = new T[Length];
        buffer.View.AsContiguous().CopyToCPU(a);
        return a;
    }

    public void Dispose() => buffer.Dispose();

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
