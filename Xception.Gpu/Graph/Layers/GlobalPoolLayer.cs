using Xception.Gpu.Ops;

namespace Xception.Gpu.Graph.Layers;

/// <summary>Keras' GlobalAveragePooling2D or GlobalMaxPooling2D: [H, W, C] to [C] (max: one H x W window).</summary>
public sealed class GlobalPoolLayer(string name, Layer input, bool max) : Layer(name, input)
{
    public bool Max { get; } = max;
    public override string KerasType => Max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D";

    public override int[] InferShape(IReadOnlyList<int[]> inputs) => [inputs[0][2]];

    int[] Window4(int batch) => [batch, 1, 1, OutputShape[0]];

    public override void Forward(LayerContext ctx)
    {
        var x = ctx.Inputs[0];
        if (!Max) { GlobalAvgPool.On(ctx.Device).Forward(x, ctx.Output); return; }
        // A max pool whose single window is the whole (square) image.
        using var y4 = ctx.Output.As(Window4(ctx.Batch));
        MaxPool.On(ctx.Device).Forward(x, MaxPool.GlobalGeometry(x.Shape), y4, ctx.Training ? ctx.SavedInt(0, Window4(ctx.Batch)) : null);
    }

    public override void Backward(LayerContext ctx)
    {
        if (ctx.InputGrads[0] is not { } dx) return;
        if (!Max) { GlobalAvgPool.On(ctx.Device).Backward(ctx.OutputGrad!, dx); return; }
        using var dy4 = ctx.OutputGrad!.As(Window4(ctx.Batch));
        MaxPool.On(ctx.Device).Backward(dy4, ctx.SavedInt(0, Window4(ctx.Batch)), MaxPool.GlobalGeometry(dx.Shape), dx);
    }

    internal override double[] Reference(IReadOnlyList<double[]> inputs, int batch, bool training = false)
    {
        var s = Inputs[0].OutputShape;
        if (!Max) return GlobalAvgPool.Reference.Forward(inputs[0], batch, s[0] * s[1], s[2]);
        return MaxPool.Reference.Forward(inputs[0], MaxPool.GlobalGeometry(new Shape(batch, s[0], s[1], s[2]))).Y;
    }
}
