using Xception.Gpu.Ops;

namespace Xception.Gpu.Graph.Layers;

/// <summary>
/// Keras' Dropout (inverted): active in training only. The mask depends on the layer's seed and the
/// training step, so each step draws a new mask and a resumed run draws the same ones.
/// </summary>
public sealed class DropoutLayer(string name, Layer input, float rate, uint seed = 0) : Layer(name, input)
{
    public float Rate { get; } = rate;
    public uint Seed { get; } = seed;
    public override string KerasType => "Dropout";
    public override int[] InferShape(IReadOnlyList<int[]> inputs) => inputs[0];

    uint StepSeed(LayerContext ctx) => Seed ^ (uint)(ctx.Step * 0x9E3779B1L) ^ (uint)((ulong)ctx.Step >> 32);

    public override void Forward(LayerContext ctx)
    {
        if (ctx.TrainingBehaviour && Rate > 0) Dropout.On(ctx.Device).Forward(ctx.Inputs[0], Rate, StepSeed(ctx), ctx.Output);
        else ctx.Inputs[0].CopyTo(ctx.Output);
    }

    public override void Backward(LayerContext ctx)
    {
        if (ctx.InputGrads[0] is not { } dx) return;
        if (ctx.TrainingBehaviour && Rate > 0) Dropout.On(ctx.Device).Backward(ctx.OutputGrad!, Rate, StepSeed(ctx), dx);
        else ctx.OutputGrad!.CopyTo(dx);
    }

    internal override double[] Reference(IReadOnlyList<double[]> inputs, int batch, bool training = false) => inputs[0];
}
