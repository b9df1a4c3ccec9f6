namespace Xception.Gpu.Graph;

/// <summary>
/// One weight tensor of a layer, with Keras' name and shape (e.g. <c>depthwise_kernel</c> [3, 3, C, 1]).
/// Its values live on the host until the model is bound to a device, then on the device (with a gradient
/// buffer when trainable); <see cref="Model.SyncToHost"/> brings them back.
/// </summary>
public sealed class Parameter
{
    public Parameter(string name, int[] kerasShape, bool trainable, int[]? deviceShape = null)
    {
        Name = name;
        KerasShape = kerasShape;
        Shape = new Shape(deviceShape ?? kerasShape);
        if (Shape.Length != new Shape(kerasShape).Length)
            throw new ArgumentException($"{name}: device shape {Shape} does not hold Keras shape ({string.Join(", ", kerasShape)})");
        Trainable = trainable;
        Host = new float[Shape.Length];
    }

    /// <summary>Keras' weight name without the layer prefix and ':0', e.g. <c>kernel</c>, <c>moving_mean</c>.</summary>
    public string Name { get; }

    /// <summary>The shape Keras stores (same memory order as <see cref="Shape"/>).</summary>
    public int[] KerasShape { get; }

    /// <summary>The shape the device ops take.</summary>
    public Shape Shape { get; }

    public bool Trainable { get; }
    public int Length => Shape.Length;

    /// <summary>Host copy of the values (the truth while no device is bound).</summary>
    public float[] Host { get; private set; }

    public Tensor<float>? Value { get; private set; }
    public Tensor<float>? Grad { get; private set; }

    /// <summary>Replaces the values; checks the length; updates the device copy when bound.</summary>
    public void Set(ReadOnlySpan<float> values)
    {
        if (values.Length != Length) throw new ShapeException(Name, $"expected {Length} values, got {values.Length}");
        values.CopyTo(Host);
        Value?.CopyFrom(values);
    }

    internal void Bind(Device d)
    {
        Unbind();
        Value = Tensor.From(d, Host, Shape.ToArray());
        if (Trainable) Grad = Tensor.Zeros(d, Shape.ToArray());
    }

    internal void SyncToHost()
    {
        if (Value is not null) Host = Value.ToArray();
    }

    internal void Unbind()
    {
        Value?.Dispose(); Grad?.Dispose();
        Value = null; Grad = null;
    }
}
