using Xception.Gpu.Ops;

namespace Xception.Gpu.Graph.Layers;

/// <summary>Keras' MaxPooling2D (Xception: 3x3, stride 2, 'same').</summary>
public sealed class MaxPoolLayer(string name, Layer input, int pool = 3, int stride = 2, Padding padding = Padding.Same)
    : Layer(name, input)
{
    public int Pool { get; } = pool;
    public int Stride { get; } = stride;
    public Padding Padding { get; } = padding;
    public override string KerasType => "MaxPooling2D";

    public override int[] InferShape(IReadOnlyList<int[]> inputs)
    {
        var x = inputs[0];
        return [AxisGeometry.Of(Name, x[0], Pool, Stride, Padding).Out, AxisGeometry.Of(Name, x[1], Pool, Stride, Padding).Out, x[2]];
    }

    public override void Forward(LayerContext ctx) =>
        MaxPool.On(ctx.Device).Forward(ctx.Inputs[0], Pool, Stride, Padding, ctx.Output,
            ctx.Training ? ctx.SavedInt(0, ctx.Output.Shape.ToArray()) : null);

    public override void Backward(LayerContext ctx)
    {
        if (ctx.InputGrads[0] is { } dx)
            MaxPool.On(ctx.Device).Backward(ctx.OutputGrad!, ctx.SavedInt(0, ctx.Output.Shape.ToArray()), Pool, Stride, Padding, dx);
    }

    internal override double[] Reference(IReadOnlyList<double[]> inputs, int batch, bool training = false) =>
        MaxPool.Reference.Forward(inputs[0], MaxPool.Geometry(new Shape(Batched(batch, Inputs[0].OutputShape)), Pool, Stride, Padding)).Y;
}
