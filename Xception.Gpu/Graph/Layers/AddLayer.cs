using Xception.Gpu.Ops;

namespace Xception.Gpu.Graph.Layers;

/// <summary>Keras' Add of two tensors: the residual connection.</summary>
public sealed class AddLayer(string name, Layer a, Layer b) : Layer(name, a, b)
{
    public override string KerasType => "Add";

    public override int[] InferShape(IReadOnlyList<int[]> inputs)
    {
        if (!inputs[0].SequenceEqual(inputs[1]))
            throw new ShapeException(Name, $"inputs ({string.Join(", ", inputs[0])}) and ({string.Join(", ", inputs[1])}) differ");
        return inputs[0];
    }

    public override void Forward(LayerContext ctx) => Residual.On(ctx.Device).Forward(ctx.Inputs[0], ctx.Inputs[1], ctx.Output);

    /// <summary>The gradient of a sum reaches both inputs unchanged.</summary>
    public override void Backward(LayerContext ctx)
    {
        foreach (var dx in ctx.InputGrads)
            if (dx is not null) ctx.OutputGrad!.CopyTo(dx);
    }

    internal override double[] Reference(IReadOnlyList<double[]> inputs, int batch, bool training = false) =>
        inputs[0].Select((v, i) => v + inputs[1][i]).ToArray();
}
