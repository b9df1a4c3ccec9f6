namespace Xception.Gpu.Graph;

/// <summary>
/// A node of the layer graph: one output, any number of inputs (other layers), its parameters, shape
/// inference, forward and backward on a device, and a float64 host reference of its inference forward.
/// Shapes exclude the batch dimension; tensors include it (NHWC).
/// </summary>
public abstract class Layer
{
    protected Layer(string name, params Layer[] inputs)
    {
        Name = name;
        Inputs = inputs;
    }

    /// <summary>Keras' layer name, e.g. <c>block2_sepconv1_bn</c>.</summary>
    public string Name { get; }

    /// <summary>Keras' class name for the summary, e.g. <c>SeparableConv2D</c>.</summary>
    public abstract string KerasType { get; }

    public IReadOnlyList<Layer> Inputs { get; }

    /// <summary>Per-sample output shape, set by <see cref="Model"/> when the graph is built.</summary>
    public int[] OutputShape { get; internal set; } = [];

    public List<Parameter> Parameters { get; } = new();

    /// <summary>
    /// Keras' <c>trainable</c>: false freezes the layer. Its parameters get no gradient and no optimizer update,
    /// and a frozen batch norm runs in inference mode while training (moving statistics normalize and are not
    /// moved) unless <see cref="Model.BatchNormMode"/> says otherwise. Gradients still flow through a frozen
    /// layer to trainable layers below it; below the lowest trainable layer none are computed. Dropout still
    /// applies in training whatever this says (it has no parameters). Takes effect at the next step.
    /// </summary>
    public bool Trainable { get; set; } = true;

    /// <summary>Position in the model's topological order.</summary>
    public int Index { get; internal set; }

    /// <summary>Per-sample output shape from the per-sample input shapes; throws ShapeException when they do not fit.</summary>
    public abstract int[] InferShape(IReadOnlyList<int[]> inputs);

    /// <summary>Creates the parameters once the input shapes are known (called by the model).</summary>
    internal virtual void CreateParameters(IReadOnlyList<int[]> inputs) { }

    public abstract void Forward(LayerContext ctx);

    /// <summary>
    /// Writes the gradient of each input into ctx.InputGrads[i] (skipping those that are null: nobody needs
    /// them) and of each trainable parameter into its Grad, from ctx.OutputGrad.
    /// </summary>
    public abstract void Backward(LayerContext ctx);

    /// <summary>
    /// Float64 forward on the host (batch-major NHWC arrays), the test oracle. Training mode changes only
    /// batch normalization (batch statistics; moving statistics are left alone) and not dropout (the
    /// oracle has none). Internal: the tests' oracle, not API; a layer defined outside the library has none.
    /// </summary>
    internal virtual double[] Reference(IReadOnlyList<double[]> inputs, int batch, bool training = false) =>
        throw new NotSupportedException($"layer {Name} ({KerasType}) has no float64 reference");

    protected Parameter Param(string name) => Parameters.First(p => p.Name == name);

    protected static int[] Batched(int batch, int[] perSample) => [batch, .. perSample];

    protected static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);

    public override string ToString() => $"{Name} ({KerasType})";
}
