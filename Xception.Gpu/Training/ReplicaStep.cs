using Xception.Gpu.Graph;
using Xception.Gpu.Ops;

namespace Xception.Gpu.Training;

/// <summary>
/// One model's part of a training or evaluation step on its own device: the batch copied in, the forward
/// pass, the loss (softmax cross-entropy for labels, sigmoid cross-entropy for multi-label targets) with its
/// gradient, the batch's metrics, and the backward pass. Single-device training, every data-parallel
/// replica and the evaluation pass all run their batches through this, so the three cannot drift apart.
/// The optimizer is not here: evaluation has none, and data-parallel replicas all-reduce between the
/// backward pass and the update.
/// </summary>
public sealed class ReplicaStep : IDisposable
{
    /// <summary>The device buffers of one batch size (the last batch of an epoch may be smaller), reused across steps.</summary>
    sealed record Buffers(Tensor<float> X, Tensor<float> Grad, Tensor<int> Labels, Tensor<float> Targets);

    readonly Dictionary<int, Buffers> buffers = new();
    Buffers? current;
    Executor? executor;

    /// <param name="model">a model bound to its device</param>
    public ReplicaStep(Model model)
    {
        Model = model;
        Device = model.Device ?? throw new InvalidOperationException("bind the model to a device first");
    }

    public Model Model { get; }
    public Device Device { get; }

    /// <summary>
    /// Forward pass and loss on <paramref name="batch"/>; returns the batch's metric sums. In training mode
    /// the executor and the loss gradient are kept for <see cref="Backward"/>.
    /// </summary>
    /// <param name="batch">the images and their labels (softmax) or targets (multi-label sigmoid)</param>
    /// <param name="training">training mode (batch statistics, dropout) or inference mode</param>
    /// <param name="step">the training step, for layers that draw a new random mask each step</param>
    /// <param name="labelSmoothing">label smoothing of the softmax cross-entropy</param>
    /// <param name="syncBatchNorm">the replicas' sum and the global batch, when batch norm is synchronized across them</param>
    public MetricSums Forward(TrainBatch batch, bool training, long step = 0, float labelSmoothing = 0f,
        (Action<float[]> AllReduceSum, int GlobalBatch)? syncBatchNorm = null)
    {
        int n = batch.Count, classes = Model.Output.OutputShape[0];
        var buf = BuffersFor(n, classes);
        buf.X.CopyFrom(batch.X.AsSpan(0, buf.X.Length));
        var ex = Model.Executor(n, training);
        if (training)
        {
            ex.Step = step;
            ex.SyncBatchNorm = syncBatchNorm;
        }
        var logits = ex.Forward(buf.X);
        double loss;
        if (batch.Labels is null)
        {
            buf.Targets.CopyFrom(batch.Targets!);
            loss = Loss.On(Device).SigmoidCrossEntropy(logits, buf.Targets, buf.Grad);
        }
        else loss = Loss.On(Device).SoftmaxCrossEntropy(logits, batch.Labels, buf.Labels, buf.Grad, labelSmoothing);
        (current, executor) = (buf, ex);
        return MetricSums.Of(batch, logits.ToArray(), loss, classes);
    }

    /// <summary>
    /// Scales the last forward pass's loss gradient on the device: a replica turns its share's mean loss into
    /// its part of the global batch's mean loss with the factor share / global batch.
    /// </summary>
    public void ScaleLossGradient(float factor) => Scale.On(Device).InPlace(LossGradient, factor);

    /// <summary>The executor of the last forward pass (for a backward pass with hooks, such as overlapped all-reduces).</summary>
    public Executor Executor => executor ?? throw new InvalidOperationException("no forward pass yet");

    /// <summary>The gradient of the loss with respect to the last forward pass's logits.</summary>
    public Tensor<float> LossGradient => current?.Grad ?? throw new InvalidOperationException("no forward pass yet");

    /// <summary>The backward pass of the last forward pass: every trainable parameter's gradient.</summary>
    public void Backward() => Executor.Backward(LossGradient);

    Buffers BuffersFor(int n, int classes)
    {
        if (!buffers.TryGetValue(n, out var buf))
            buffers[n] = buf = new Buffers(Tensor.Zeros(Device, [n, .. Model.Input.OutputShape]), Tensor.Zeros(Device, n, classes),
                Tensor.Zeros<int>(Device, n), Tensor.Zeros(Device, n, classes));
        return buf;
    }

    public void Dispose()
    {
        foreach (var (x, g, l, t) in buffers.Values) { x.Dispose(); g.Dispose(); l.Dispose(); t.Dispose(); }
        buffers.Clear();
        (current, executor) = (null, null);
    }
}
