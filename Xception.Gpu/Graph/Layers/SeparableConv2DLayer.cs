using Xception.Gpu.Ops;

namespace Xception.Gpu.Graph.Layers;

/// <summary>
/// Keras' SeparableConv2D without bias: a 3x3 spatial convolution per channel (depthwise, multiplier 1),
/// then a 1x1 pointwise convolution, with no activation between them, as in Xception. Two of the paper's
/// variations are options: an activation between the two (section 4.7), and a spatial part that works on
/// <c>segments</c> channel groups instead of single channels (segments = channels is depthwise; 1 is a
/// regular 3x3 convolution). Weights: depthwise_kernel [3, 3, C, 1] (or spatial_kernel [3, 3, C / k, C]
/// when grouped) and pointwise_kernel [1, 1, C, O].
/// </summary>
public sealed class SeparableConv2DLayer : Layer
{
    public SeparableConv2DLayer(string name, Layer input, int filters, int kernel = 3, Padding padding = Padding.Same,
        ActivationKind between = ActivationKind.None, int segments = 0)
        : base(name, input)
    {
        Filters = filters; Kernel = kernel; Padding = padding; Between = between; Segments = segments;
    }

    public int Filters { get; }
    public int Kernel { get; }
    public Padding Padding { get; }
    public ActivationKind Between { get; }
    /// <summary>Channel segments of the spatial part; 0 means one per channel (depthwise).</summary>
    public int Segments { get; }

    int Channels => Inputs[0].OutputShape[2];
    bool Depthwise => Segments == 0 || Segments == Channels;
    string SpatialName => Depthwise ? "depthwise_kernel" : "spatial_kernel";

    public override string KerasType => "SeparableConv2D";

    public override int[] InferShape(IReadOnlyList<int[]> inputs)
    {
        var x = inputs[0];
        if (Segments > 0 && x[2] % Segments != 0)
            throw new ShapeException(Name, $"{Segments} segments must divide the {x[2]} input channels");
        var gy = AxisGeometry.Of(Name, x[0], Kernel, 1, Padding);
        var gx = AxisGeometry.Of(Name, x[1], Kernel, 1, Padding);
        return [gy.Out, gx.Out, Filters];
    }

    internal override void CreateParameters(IReadOnlyList<int[]> inputs)
    {
        int c = inputs[0][2];
        if (Segments == 0 || Segments == c)
            Parameters.Add(new Parameter("depthwise_kernel", ParameterRole.Kernel, [Kernel, Kernel, c, 1], [Kernel, Kernel, c]));
        else
            Parameters.Add(new Parameter("spatial_kernel", ParameterRole.Kernel, [Kernel, Kernel, c / Segments, c]));
        Parameters.Add(new Parameter("pointwise_kernel", ParameterRole.Kernel, [1, 1, c, Filters], [c, Filters]));
    }

    // Saved slots: 0 = spatial output, 1 = activation output (when an activation sits between); Backward adds
    // 2 = gradient at the pointwise input.
    public override void Forward(LayerContext ctx)
    {
        var x = ctx.Inputs[0];
        int[] mid = [ctx.Batch, ctx.Output.Shape[1], ctx.Output.Shape[2], Channels];
        var spatial = ctx.Saved(0, mid);
        SpatialForward(ctx.Device, x, spatial);
        var pointIn = spatial;
        if (Between != ActivationKind.None)
        {
            pointIn = ctx.Saved(1, mid);
            Activation.On(ctx.Device).Forward(Between, spatial, pointIn);
        }
        Pointwise.On(ctx.Device).Forward(pointIn, Param("pointwise_kernel").Value!, 1, ctx.Output);
    }

    void SpatialForward(Device d, Tensor<float> x, Tensor<float> y)
    {
        var w = Param(SpatialName).Value!;
        if (Depthwise) Ops.Depthwise.On(d).Forward(x, w, 1, Padding, y);
        else Conv2D.On(d).Forward(x, w, 1, Padding, y);
    }

    public override void Backward(LayerContext ctx)
    {
        var d = ctx.Device;
        var x = ctx.Inputs[0];
        int[] mid = [ctx.Batch, ctx.Output.Shape[1], ctx.Output.Shape[2], Channels];
        var spatial = ctx.Saved(0, mid);
        var pointIn = Between == ActivationKind.None ? spatial : ctx.Saved(1, mid);
        var pw = Param("pointwise_kernel");
        var pointOp = Pointwise.On(d);
        // A frozen layer runs backward only for the gradient below it (the executor skips it otherwise).
        if (pw.Trainable) pointOp.BackwardWeight(pointIn, ctx.OutputGrad!, 1, pw.Grad!);
        // The gradient at the pointwise input gets its own slot (2) rather than pointIn's: the activation's
        // backward below still reads pointIn (its forward output) and then turns dMid into the gradient at
        // the spatial output in place.
        var dMid = ctx.Saved(2, mid);
        pointOp.BackwardInput(ctx.OutputGrad!, pw.Value!, 1, dMid);
        if (Between != ActivationKind.None) Activation.On(d).Backward(Between, dMid, pointIn, dMid);
        var sp = Param(SpatialName);
        if (Depthwise)
        {
            var op = Ops.Depthwise.On(d);
            if (sp.Trainable) op.BackwardWeight(x, dMid, 1, Padding, sp.Grad!);
            if (ctx.InputGrads[0] is { } dx) op.BackwardInput(dMid, sp.Value!, 1, Padding, dx);
        }
        else
        {
            var op = Conv2D.On(d);
            if (sp.Trainable) op.BackwardWeight(x, dMid, 1, Padding, sp.Grad!);
            if (ctx.InputGrads[0] is { } dx) op.BackwardInput(dMid, sp.Value!, 1, Padding, dx);
        }
    }

    internal override double[] Reference(IReadOnlyList<double[]> inputs, int batch, bool training = false)
    {
        var xs = new Shape(Batched(batch, Inputs[0].OutputShape));
        var sp = Param(SpatialName);
        double[] mid;
        if (Depthwise)
            mid = Ops.Depthwise.Reference.Forward(inputs[0], D(sp.Host), Ops.Depthwise.Geometry(xs, sp.Shape, 1, Padding));
        else
            mid = Conv2D.Reference.Forward(inputs[0], D(sp.Host), Conv2D.Geometry(xs, sp.Shape, 1, Padding));
        if (Between != ActivationKind.None) mid = Activation.Reference.Forward(Between, mid);
        int[] ms = [batch, OutputShape[0], OutputShape[1], Channels];
        var pw = Param("pointwise_kernel");
        return Pointwise.Reference.Forward(mid, D(pw.Host), Pointwise.Geometry(new Shape(ms), pw.Shape, 1));
    }
}
