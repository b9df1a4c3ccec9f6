using Xception.Gpu.Ops;

namespace Xception.Gpu.Graph.Layers;

/// <summary>
/// Keras' BatchNormalization over the channel axis: gamma and beta trainable, moving_mean and
/// moving_variance not (they are the 54,528 non-trainable parameters of Xception). Training mode
/// normalizes with the batch statistics and moves the moving ones; inference uses the moving ones.
/// </summary>
public sealed class BatchNormLayer(string name, Layer input, float epsilon = BatchNorm.DefaultEpsilon, float momentum = BatchNorm.DefaultMomentum)
    : Layer(name, input)
{
    public float Epsilon { get; } = epsilon;
    public float Momentum { get; } = momentum;

    public override string KerasType => "BatchNormalization";
    public override int[] InferShape(IReadOnlyList<int[]> inputs) => inputs[0];

    internal override void CreateParameters(IReadOnlyList<int[]> inputs)
    {
        int c = inputs[0][^1];
        Parameters.Add(new Parameter("gamma", ParameterRole.Gamma, [c]));
        Parameters.Add(new Parameter("beta", ParameterRole.Beta, [c]));
        Parameters.Add(new Parameter("moving_mean", ParameterRole.MovingMean, [c]));
        Parameters.Add(new Parameter("moving_variance", ParameterRole.MovingVariance, [c]));
    }

    BatchNormParams Params() => new(Param("gamma").Value!, Param("beta").Value!, Param("moving_mean").Value!, Param("moving_variance").Value!);

    public override void Forward(LayerContext ctx)
    {
        var op = BatchNorm.On(ctx.Device);
        int c = OutputShape[^1];
        if (ctx.TrainingBehaviour)
            op.ForwardTraining(ctx.Inputs[0], Params(), ctx.Output, ctx.Saved(0, c), ctx.Saved(1, c), Epsilon, Momentum,
                ctx.BatchStatsSync(ctx.Inputs[0].Shape.Rows));
        else op.ForwardInference(ctx.Inputs[0], Params(), ctx.Output, Epsilon);
    }

    public override void Backward(LayerContext ctx)
    {
        int c = OutputShape[^1];
        var dx = ctx.InputGrads[0] ?? ctx.Saved(2, ctx.Inputs[0].Shape.ToArray());
        var op = BatchNorm.On(ctx.Device);
        if (ctx.TrainingBehaviour)
            op.BackwardTraining(ctx.OutputGrad!, ctx.Inputs[0], Param("gamma").Value!, ctx.Saved(0, c), ctx.Saved(1, c), dx,
                Param("gamma").Grad!, Param("beta").Grad!, ctx.BatchStatsSync(ctx.Inputs[0].Shape.Rows));
        else
            op.BackwardInference(ctx.OutputGrad!, ctx.Inputs[0], Params(), dx, Param("gamma").Grad!, Param("beta").Grad!, Epsilon);
    }

    public override double[] Reference(IReadOnlyList<double[]> inputs, int batch, bool training = false) => training
        ? BatchNorm.Reference.ForwardTraining(inputs[0], D(Param("gamma").Host), D(Param("beta").Host), inputs[0].Length / OutputShape[^1], OutputShape[^1], Epsilon).Y
        : BatchNorm.Reference.ForwardInference(inputs[0], D(Param("gamma").Host), D(Param("beta").Host),
            D(Param("moving_mean").Host), D(Param("moving_variance").Host), OutputShape[^1], Epsilon);
}
