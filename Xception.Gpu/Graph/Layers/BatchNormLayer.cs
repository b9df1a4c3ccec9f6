using Xception.Gpu.Ops;

namespace Xception.Gpu.Graph.Layers;

/// <summary>
/// Keras' BatchNormalization over the channel axis: gamma and beta trainable, moving_mean and
/// moving_variance not (they are the 54,528 non-trainable parameters of Xception). Training mode
/// normalizes with the batch statistics and moves the moving ones; inference uses the moving ones. In a training
/// step the model's <see cref="Model.BatchNormMode"/> may put it in inference mode (a frozen layer, by default):
/// then it normalizes with the moving statistics, leaves them alone, and its backward pass treats them as constants.
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
        if (ctx.UsesBatchStatistics)
            op.ForwardTraining(ctx.Inputs[0], Params(), ctx.Output, ctx.Saved(0, c), ctx.Saved(1, c), Epsilon, Momentum,
                ctx.BatchStatsSync(ctx.Inputs[0].Shape.Rows));
        else op.ForwardInference(ctx.Inputs[0], Params(), ctx.Output, Epsilon);
    }

    public override void Backward(LayerContext ctx)
    {
        int c = OutputShape[^1];
        var op = BatchNorm.On(ctx.Device);
        bool trainable = ctx.LayerTrainable;
        if (!trainable && !ctx.UsesBatchStatistics)
        {
            // Frozen, inference mode: gamma and beta take no gradient, so only dx = dy * gamma / sqrt(var + eps).
            if (ctx.InputGrads[0] is { } frozenDx) op.BackwardInputFrozen(ctx.OutputGrad!, Params(), frozenDx, Epsilon);
            return;
        }
        var dx = ctx.InputGrads[0] ?? ctx.Saved(2, ctx.Inputs[0].Shape.ToArray());
        // A frozen layer (in training mode by BatchNormMode.Train) still computes dgamma and dbeta on the way to dx;
        // they go to scratch so its Grad buffers stay untouched.
        var dgamma = trainable ? Param("gamma").Grad! : ctx.Saved(3, c);
        var dbeta = trainable ? Param("beta").Grad! : ctx.Saved(4, c);
        if (ctx.UsesBatchStatistics)
            op.BackwardTraining(ctx.OutputGrad!, ctx.Inputs[0], Param("gamma").Value!, ctx.Saved(0, c), ctx.Saved(1, c), dx,
                dgamma, dbeta, ctx.BatchStatsSync(ctx.Inputs[0].Shape.Rows));
        else
            op.BackwardInference(ctx.OutputGrad!, ctx.Inputs[0], Params(), dx, dgamma, dbeta, Epsilon);
    }

    internal override double[] Reference(IReadOnlyList<double[]> inputs, int batch, bool training = false) => training
        ? BatchNorm.Reference.ForwardTraining(inputs[0], D(Param("gamma").Host), D(Param("beta").Host), inputs[0].Length / OutputShape[^1], OutputShape[^1], Epsilon).Y
        : BatchNorm.Reference.ForwardInference(inputs[0], D(Param("gamma").Host), D(Param("beta").Host),
            D(Param("moving_mean").Host), D(Param("moving_variance").Host), OutputShape[^1], Epsilon);
}
