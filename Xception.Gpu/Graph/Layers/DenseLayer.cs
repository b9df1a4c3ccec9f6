using Xception.Gpu.Ops;

namespace Xception.Gpu.Graph.Layers;

/// <summary>Keras' Dense with bias; Xception's <c>predictions</c>. Outputs logits (softmax is applied by the caller).</summary>
public sealed class DenseLayer(string name, Layer input, int units) : Layer(name, input)
{
    public int Units { get; } = units;
    public override string KerasType => "Dense";

    public override int[] InferShape(IReadOnlyList<int[]> inputs)
    {
        if (inputs[0].Length != 1) throw new ShapeException(Name, $"input must be flat, got ({string.Join(", ", inputs[0])})");
        return [Units];
    }

    internal override void CreateParameters(IReadOnlyList<int[]> inputs)
    {
        Parameters.Add(new Parameter("kernel", ParameterRole.Kernel, [inputs[0][0], Units]));
        Parameters.Add(new Parameter("bias", ParameterRole.Bias, [Units]));
    }

    public override void Forward(LayerContext ctx) =>
        Dense.On(ctx.Device).Forward(ctx.Inputs[0], Param("kernel").Value!, Param("bias").Value!, ctx.Output);

    public override void Backward(LayerContext ctx)
    {
        var op = Dense.On(ctx.Device);
        if (!ctx.LayerTrainable)
        {
            // Frozen: only the gradient that flows on to trainable layers below.
            if (ctx.InputGrads[0] is { } frozenDx) op.BackwardInput(ctx.OutputGrad!, Param("kernel").Value!, frozenDx);
            return;
        }
        var dx = ctx.InputGrads[0] ?? ctx.Saved(0, ctx.Inputs[0].Shape.ToArray());
        op.Backward(ctx.OutputGrad!, ctx.Inputs[0], Param("kernel").Value!, dx, Param("kernel").Grad!, Param("bias").Grad!);
    }

    internal override double[] Reference(IReadOnlyList<double[]> inputs, int batch, bool training = false) =>
        Dense.Reference.Forward(inputs[0], D(Param("kernel").Host), D(Param("bias").Host), batch, Inputs[0].OutputShape[0], Units);
}
