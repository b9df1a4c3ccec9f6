namespace Xception.Gpu.Graph;

/// <summary>
/// What a parameter is for, which decides how it starts (<see cref="Model.Initialize(int)"/>), whether it is
/// trained, and whether weight decay applies: behaviour follows the role, never the Keras name.
/// </summary>
public enum ParameterRole
{
    /// <summary>Weights of a convolution or dense layer (any of Keras' <c>kernel</c>, <c>depthwise_kernel</c>, <c>pointwise_kernel</c>); Glorot-uniform, decayed.</summary>
    Kernel,

    /// <summary>A dense layer's bias; starts at 0.</summary>
    Bias,

    /// <summary>Batch norm's scale; starts at 1.</summary>
    Gamma,

    /// <summary>Batch norm's offset; starts at 0.</summary>
    Beta,

    /// <summary>Batch norm's moving mean: updated by the forward pass in training, not by the optimizer; starts at 0.</summary>
    MovingMean,

    /// <summary>Batch norm's moving variance: updated by the forward pass in training, not by the optimizer; starts at 1.</summary>
    MovingVariance,
}

/// <summary>
/// One weight tensor of a layer, with Keras' name and shape (e.g. <c>depthwise_kernel</c> [3, 3, C, 1]).
/// Its values live on the host until the model is bound to a device, then on the device (with a gradient
/// buffer when optimizable); <see cref="Model.SyncToHost"/> brings them back.
/// </summary>
public sealed class Parameter
{
    /// <summary>A parameter of zeros.</summary>
    /// <param name="name">Keras' weight name, e.g. <c>depthwise_kernel</c>.</param>
    /// <param name="role">What it is for.</param>
    /// <param name="kerasShape">The shape Keras stores.</param>
    /// <param name="deviceShape">The shape the device ops take, when it differs (same length).</param>
    public Parameter(string name, ParameterRole role, int[] kerasShape, int[]? deviceShape = null)
    {
        Name = name;
        Role = role;
        KerasShape = kerasShape;
        Shape = new Shape(deviceShape ?? kerasShape);
        if (Shape.Length != new Shape(kerasShape).Length)
            throw new ArgumentException($"{name}: device shape {Shape} does not hold Keras shape ({string.Join(", ", kerasShape)})");
        Host = new float[Shape.Length];
    }

    /// <summary>Keras' weight name without the layer prefix and ':0', e.g. <c>kernel</c>, <c>moving_mean</c>.</summary>
    public string Name { get; }

    /// <summary>The shape Keras stores (same memory order as <see cref="Shape"/>).</summary>
    public int[] KerasShape { get; }

    /// <summary>The shape the device ops take.</summary>
    public Shape Shape { get; }

    /// <summary>What it is for.</summary>
    public ParameterRole Role { get; }

    /// <summary>
    /// Whether its role is learned by the optimizer: all but batch norm's moving statistics, which the forward
    /// pass moves. Such a parameter has a gradient buffer and optimizer state whether or not its layer is frozen,
    /// so freezing and unfreezing between steps needs no rebinding and keeps the checkpoint format.
    /// </summary>
    public bool Optimizable => Role is not (ParameterRole.MovingMean or ParameterRole.MovingVariance);

    /// <summary>
    /// Whether the optimizer updates it now (Keras' <c>trainable_weights</c>): <see cref="Optimizable"/> and its
    /// layer not frozen (<see cref="Layer.Trainable"/>). A frozen parameter gets no gradient, no update and no
    /// all-reduce.
    /// </summary>
    public bool Trainable => Optimizable && (Owner?.Trainable ?? true);

    /// <summary>The layer that holds it (set when the model is built).</summary>
    public Layer? Owner { get; internal set; }

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
        if (Optimizable) Grad = Tensor.Zeros(d, Shape.ToArray());
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
