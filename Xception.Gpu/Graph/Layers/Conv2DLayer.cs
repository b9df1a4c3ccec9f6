using Xception.Gpu.Ops;

namespace Xception.Gpu.Graph.Layers;

/// <summary>
/// Keras' Conv2D without bias: k x k, stride, 'same' or 'valid', optional groups. A 1x1 kernel without
/// groups runs as a GEMM (<see cref="Pointwise"/>); anything else as a direct convolution.
/// </summary>
public sealed class Conv2DLayer : Layer
{
    public Conv2DLayer(string name, Layer input, int filters, int kernel, int stride = 1, Padding padding = Padding.Valid, int groups = 1)
        : base(name, input)
    {
        Filters = filters; Kernel = kernel; Stride = stride; Padding = padding; Groups = groups;
    }

    public int Filters { get; }
    public int Kernel { get; }
    public int Stride { get; }
    public Padding Padding { get; }
    public int Groups { get; }
    bool IsPointwise => Kernel == 1 && Groups == 1;

    public override string KerasType => "Conv2D";

    public override int[] InferShape(IReadOnlyList<int[]> inputs)
    {
        var x = inputs[0];
        if (x[2] % Groups != 0 || Filters % Groups != 0)
            throw new ShapeException(Name, $"{Groups} groups must divide the {x[2]} input channels and the {Filters} filters");
        var gy = AxisGeometry.Of(Name, x[0], Kernel, Stride, Padding);
        var gx = AxisGeometry.Of(Name, x[1], Kernel, Stride, Padding);
        return [gy.Out, gx.Out, Filters];
    }

    internal override void CreateParameters(IReadOnlyList<int[]> inputs)
    {
        int cin = inputs[0][2] / Groups;
        Parameters.Add(new Parameter("kernel", ParameterRole.Kernel, [Kernel, Kernel, cin, Filters],
            IsPointwise ? [cin, Filters] : null));
    }

    public override void Forward(LayerContext ctx)
    {
        var w = Param("kernel").Value!;
        if (IsPointwise) Pointwise.On(ctx.Device).Forward(ctx.Inputs[0], w, Stride, ctx.Output);
        else Conv2D.On(ctx.Device).Forward(ctx.Inputs[0], w, Stride, Padding, ctx.Output);
    }

    public override void Backward(LayerContext ctx)
    {
        var p = Param("kernel");
        var dy = ctx.OutputGrad!;
        if (IsPointwise)
        {
            var op = Pointwise.On(ctx.Device);
            if (p.Trainable) op.BackwardWeight(ctx.Inputs[0], dy, Stride, p.Grad!);
            if (ctx.InputGrads[0] is { } dx) op.BackwardInput(dy, p.Value!, Stride, dx);
        }
        else
        {
            var op = Conv2D.On(ctx.Device);
            if (p.Trainable) op.BackwardWeight(ctx.Inputs[0], dy, Stride, Padding, p.Grad!);
            if (ctx.InputGrads[0] is { } dx) op.BackwardInput(dy, p.Value!, Stride, Padding, dx);
        }
    }

    internal override double[] Reference(IReadOnlyList<double[]> inputs, int batch, bool training = false)
    {
        var p = Param("kernel");
        var s = Conv2D.Geometry(new Shape(Batched(batch, Inputs[0].OutputShape)), new Shape(p.KerasShape), Stride, Padding);
        return Conv2D.Reference.Forward(inputs[0], D(p.Host), s);
    }
}
