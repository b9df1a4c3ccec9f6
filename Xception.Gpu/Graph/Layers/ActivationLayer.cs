using Xception.Gpu.Ops;

namespace Xception.Gpu.Graph.Layers;

/// <summary>Keras' Activation layer (ReLU in Xception; ELU for the ablation).</summary>
public sealed class ActivationLayer(string name, Layer input, ActivationKind kind) : Layer(name, input)
{
    public ActivationKind Kind { get; } = kind;
    public override string KerasType => "Activation";
    public override int[] InferShape(IReadOnlyList<int[]> inputs) => inputs[0];
    public override void Forward(LayerContext ctx) => Activation.On(ctx.Device).Forward(Kind, ctx.Inputs[0], ctx.Output);

    public override void Backward(LayerContext ctx)
    {
        if (ctx.InputGrads[0] is { } dx) Activation.On(ctx.Device).Backward(Kind, ctx.OutputGrad!, ctx.Output, dx);
    }

    internal override double[] Reference(IReadOnlyList<double[]> inputs, int batch, bool training = false) => Activation.Reference.Forward(Kind, inputs[0]);
}
