namespace Xception.Gpu.Graph;

/// <summary>
/// What a layer sees while it runs: the device, the mode, its input and output tensors, the gradients in
/// backward, and saved state (batch statistics, argmax, intermediate results) that the executor keeps
/// from forward to backward when training and recycles right away in inference.
/// </summary>
public sealed class LayerContext
{
    readonly Executor executor;
    readonly Layer layer;

    internal LayerContext(Executor executor, Layer layer, Tensor<float>[] inputs, Tensor<float> output)
    {
        this.executor = executor;
        this.layer = layer;
        Inputs = inputs;
        Output = output;
        InputGrads = new Tensor<float>?[inputs.Length];
    }

    public Device Device => executor.Device;
    public bool Training => executor.Training;

    /// <summary>
    /// Whether layers behave as in training (batch norm with batch statistics, dropout active): a training
    /// executor unless <see cref="Executor.InferenceLayers"/> is set. Backward must follow the same choice.
    /// </summary>
    public bool TrainingBehaviour => executor.Training && !executor.InferenceLayers;
    public int Batch => executor.Batch;
    public Tensor<float>[] Inputs { get; }
    public Tensor<float> Output { get; }

    /// <summary>Gradient of the loss with respect to <see cref="Output"/> (backward only).</summary>
    public Tensor<float>? OutputGrad { get; internal set; }

    /// <summary>Where to write each input's gradient; null where no gradient is needed.</summary>
    public Tensor<float>?[] InputGrads { get; }

    /// <summary>A float tensor the layer keeps between forward and backward (slot per layer).</summary>
    public Tensor<float> Saved(int slot, params int[] shape) => executor.Saved(layer, slot, shape);

    /// <summary>An int tensor the layer keeps between forward and backward (training only).</summary>
    public Tensor<int> SavedInt(int slot, params int[] shape) => executor.SavedInt(layer, slot, shape);

    /// <summary>
    /// For batch norm in training: how to add a vector of per-replica sums over all replicas, and how many
    /// rows the statistics cover, when batch norm is synchronized across data-parallel replicas; else null.
    /// </summary>
    public Ops.BatchStatsSync? BatchStatsSync(int localRows)
    {
        if (executor.SyncBatchNorm is not { } sync || !Training) return null;
        var device = Device;
        return new Ops.BatchStatsSync(view =>
        {
            var host = new float[view.Length];
            ILGPU.Runtime.ArrayViewExtensions.CopyToCPU(view, host);
            sync.AllReduceSum(host);
            ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(view, host);
        }, localRows / Batch * sync.GlobalBatch);
    }

    /// <summary>
    /// Training only: whether this batch norm layer normalizes with the batch's statistics and moves its moving ones
    /// (false: inference mode, see <see cref="Model.BatchNormMode"/>). Always false in an inference pass, and with
    /// <see cref="Executor.InferenceLayers"/>.
    /// </summary>
    public bool UsesBatchStatistics => TrainingBehaviour && executor.Model.UsesBatchStatistics(layer);

    /// <summary>Whether this layer's parameters take gradients now (false when the layer is frozen).</summary>
    public bool LayerTrainable => layer.Trainable;

    /// <summary>A step counter for layers that need fresh randomness per training step (dropout).</summary>
    public long Step => executor.Step;
}
