namespace Xception.Gpu.Graph.Layers;

/// <summary>The model input (Keras' InputLayer): per-sample shape [H, W, C].</summary>
public sealed class InputLayer(string name, int[] shape) : Layer(name)
{
    public override string KerasType => "InputLayer";
    public override int[] InferShape(IReadOnlyList<int[]> inputs) => shape;
    public override void Forward(LayerContext ctx) { } // the executor copies the batch into the output
    public override void Backward(LayerContext ctx) { }
    internal override double[] Reference(IReadOnlyList<double[]> inputs, int batch, bool training = false) => inputs[0];
}
