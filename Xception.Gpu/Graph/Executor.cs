using Xception.Gpu.Ops;

namespace Xception.Gpu.Graph;

/// <summary>
/// Runs a model on one device for one batch size and mode, with its memory planned once.
/// Inference: activation buffers are recycled as soon as their last reader has run (best fit by size),
/// so memory is a few of the largest activations, not their sum. Training: every activation and the
/// state layers save for backward stay until the backward pass; gradients of the activations are
/// allocated once and reused from step to step.
/// </summary>
public sealed class Executor : IDisposable
{
    readonly Model model;
    readonly int[] lastUse;
    readonly List<Tensor<float>> buffers = new();   // every allocation this executor owns
    readonly List<Tensor<float>> free = new();      // inference: buffers not in use now
    readonly Tensor<float>?[] outputs;
    readonly Dictionary<(int, int), Tensor<float>> saved = new();
    readonly Dictionary<(int, int), Tensor<int>> savedInt = new();
    readonly List<Tensor<float>> layerTemps = new();
    readonly Dictionary<Tensor<float>, Tensor<float>> ownerOf = new(ReferenceEqualityComparer.Instance);
    Tensor<float>?[]? grads;
    bool[]? gradWritten;
    LayerContext?[]? contexts;

    internal Executor(Model model, Device device, int batch, bool training)
    {
        this.model = model;
        Device = device;
        Batch = batch;
        Training = training;
        outputs = new Tensor<float>?[model.Layers.Count];
        lastUse = new int[model.Layers.Count];
        foreach (var l in model.Layers)
        {
            lastUse[l.Index] = l.Index;
            foreach (var i in l.Inputs) lastUse[i.Index] = Math.Max(lastUse[i.Index], l.Index);
        }
        lastUse[model.Output.Index] = int.MaxValue;
    }

    public Device Device { get; }
    internal Model Model => model;
    public int Batch { get; }
    public bool Training { get; }

    /// <summary>
    /// Synchronized batch norm: how to sum a vector of batch statistics over all replicas (in place, on the host),
    /// and the global batch size. Null (the default) keeps each executor's batch statistics its own.
    /// </summary>
    public (Action<float[]> AllReduceSum, int GlobalBatch)? SyncBatchNorm { get; set; }

    /// <summary>
    /// When set on a training executor, every layer computes as in inference (batch norm normalizes with its
    /// moving statistics and does not move them; dropout passes its input through) while the executor still
    /// keeps what backward needs: gradients of the network as it predicts, which Grad-CAM explains. Off by
    /// default; training never sets it.
    /// </summary>
    public bool InferenceLayers { get; set; }

    /// <summary>Training step number, for layers that draw a new random mask each step.</summary>
    public long Step { get; set; }

    /// <summary>
    /// When set, the device is synchronized after every layer and the time of each layer's forward and
    /// backward is added here (seconds, by layer index): the per-layer profile of the benchmark.
    /// </summary>
    public double[,]? Profile { get; set; }

    /// <summary>Bytes of device memory this executor holds.</summary>
    public long Bytes => buffers.Sum(b => b.Capacity) * 4 + savedInt.Values.Sum(t => (long)t.Length) * 4;

    Tensor<float> Take(int[] shape)
    {
        int need = new Shape(shape).Length;
        if (Training)
        {
            var t = Tensor.Zeros(Device, shape);
            buffers.Add(t);
            return t;
        }
        Tensor<float>? best = null;
        foreach (var f in free)
            if (f.Capacity >= need && (best is null || f.Capacity < best.Capacity)) best = f;
        if (best is null)
        {
            best = Tensor.Zeros(Device, need);
            buffers.Add(best);
        }
        else free.Remove(best);
        var view = best.As(shape);
        ownerOf[view] = best;
        return view;
    }

    /// <summary>Inference: the view's memory is free again.</summary>
    void Release(Tensor<float> view)
    {
        if (ownerOf.Remove(view, out var owner)) free.Add(owner);
    }

    internal Tensor<float> Saved(Layer layer, int slot, int[] shape)
    {
        if (Training)
        {
            if (!saved.TryGetValue((layer.Index, slot), out var t)) saved[(layer.Index, slot)] = t = Take(shape);
            return t;
        }
        var temp = Take(shape);
        layerTemps.Add(temp);
        return temp;
    }

    internal Tensor<int> SavedInt(Layer layer, int slot, int[] shape)
    {
        if (!savedInt.TryGetValue((layer.Index, slot), out var t))
            savedInt[(layer.Index, slot)] = t = Tensor.Zeros<int>(Device, shape);
        return t;
    }

    /// <summary>Runs the forward pass; the returned tensor is the model output, valid until the next run.</summary>
    public Tensor<float> Forward(Tensor<float> input)
    {
        var inShape = model.Input.OutputShape;
        if (input.Shape.Rank != inShape.Length + 1 || input.Shape[0] != Batch || !input.Shape.ToArray().Skip(1).SequenceEqual(inShape))
            throw new ShapeException(model.Name, $"input must have shape ({Batch}, {string.Join(", ", inShape)}), got {input.Shape}");
        if (!Training)
        {
            // Every run replays the same requests, so best fit hands out the same buffers each time.
            free.Clear();
            free.AddRange(buffers);
            ownerOf.Clear();
        }
        contexts ??= new LayerContext?[model.Layers.Count];
        foreach (var layer in model.Layers)
        {
            Tensor<float> output;
            if (layer == model.Input) output = input;
            else
            {
                output = Training && outputs[layer.Index] is { } kept ? kept : Take(Batched(layer.OutputShape));
            }
            outputs[layer.Index] = output;
            var ctx = new LayerContext(this, layer, layer.Inputs.Select(i => outputs[i.Index]!).ToArray(), output);
            contexts[layer.Index] = ctx;
            long t0 = Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
            layer.Forward(ctx);
            if (Profile is not null)
            {
                Device.Synchronize();
                Profile[layer.Index, 0] += System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds;
            }
            if (!Training)
            {
                foreach (var t in layerTemps) Release(t);
                layerTemps.Clear();
                foreach (var i in layer.Inputs.Distinct())
                    if (lastUse[i.Index] == layer.Index && i != model.Input) Release(outputs[i.Index]!);
            }
        }
        return outputs[model.Output.Index]!;
    }

    /// <summary>
    /// The output of a layer from the last <see cref="Forward"/> of a training executor (which keeps every
    /// activation until the next run); valid until then.
    /// </summary>
    public Tensor<float> Output(Layer layer)
    {
        if (!Training) throw new InvalidOperationException($"{model.Name}: inference recycles activations; only a training executor keeps {layer.Name}'s output");
        return outputs[Owned(layer).Index] ?? throw new InvalidOperationException($"{model.Name}: no forward pass has run yet");
    }

    /// <summary>
    /// The gradient with respect to a layer's output from the last <see cref="Backward"/> (summed over its
    /// readers where it feeds several), or null where no gradient reached it. Valid until the next backward.
    /// </summary>
    public Tensor<float>? OutputGradient(Layer layer)
    {
        int i = Owned(layer).Index;
        if (i == model.Output.Index) return lastOutputGrad;
        return gradWritten is { } w && w[i] ? grads![i] : null;
    }

    Layer Owned(Layer layer) => layer.Index < model.Layers.Count && model.Layers[layer.Index] == layer
        ? layer : throw new LayerNotFoundException(layer.Name, $"{model.Name} has no layer '{layer.Name}' (it belongs to another model)");

    Tensor<float>? lastOutputGrad;

    /// <summary>
    /// Backward pass after a training forward: from the gradient of the loss with respect to the model
    /// output, writes every trainable parameter's Grad. Where a tensor feeds several layers (the residual
    /// forks), their gradients are summed. Only the gradients something trainable depends on are computed: a
    /// layer's output gradient is needed when the layer or any layer below it (in the graph) has trainable
    /// parameters, so with a frozen base the pass stops at the head and a step costs about a forward pass.
    /// Frozen parameters' Grad buffers are left as they were. With <paramref name="downTo"/>, every output
    /// gradient down to that layer's is computed, frozen or not, and the pass stops once that layer's is
    /// complete (every reader of a layer comes after it): for callers that need only it (Grad-CAM).
    /// </summary>
    public void Backward(Tensor<float> outputGrad, Layer? downTo = null)
    {
        int stop = downTo is null ? 0 : Owned(downTo).Index + 1;
        if (!Training) throw new InvalidOperationException($"{model.Name}: backward needs a training-mode forward pass first");
        if (contexts is null) throw new InvalidOperationException($"{model.Name}: backward called before forward");
        var outLayer = model.Output;
        if (!outputGrad.Shape.Equals(outputs[outLayer.Index]!.Shape))
            throw new ShapeException(model.Name, $"output gradient {outputGrad.Shape} must have the output's shape {outputs[outLayer.Index]!.Shape}");
        grads ??= new Tensor<float>?[model.Layers.Count];
        var written = gradWritten = new bool[model.Layers.Count];
        lastOutputGrad = outputGrad;
        var residual = Residual.On(Device);
        // needed[i]: some trainable parameter lies at or below layer i, so the gradient of its output matters;
        // with downTo, so does every output gradient from downTo's up.
        var needed = new bool[model.Layers.Count];
        foreach (var l in model.Layers)
            needed[l.Index] = l.Parameters.Any(p => p.Trainable) || l.Inputs.Any(i => needed[i.Index]) || (downTo is not null && l.Index >= downTo.Index);
        for (int li = model.Layers.Count - 1; li >= stop; li--)
        {
            var layer = model.Layers[li];
            if (layer == model.Input) continue;
            var ctx = contexts[li]!;
            Tensor<float>? dOut = li == outLayer.Index ? outputGrad : written[li] ? grads[li] : null;
            if (dOut is null || !needed[li])
            {
                AfterLayerBackward?.Invoke(layer); // no loss depends on this layer: its gradients stay as they were
                continue;
            }
            ctx.OutputGrad = dOut;
            var accumulate = new List<(Tensor<float> Temp, Tensor<float> Into)>();
            for (int k = 0; k < layer.Inputs.Count; k++)
            {
                var src = layer.Inputs[k];
                if (src == model.Input || !needed[src.Index]) { ctx.InputGrads[k] = null; continue; }
                var g = grads[src.Index] ??= Tensor.Zeros(Device, outputs[src.Index]!.Shape.ToArray());
                if (!written[src.Index])
                {
                    ctx.InputGrads[k] = g;
                    written[src.Index] = true;
                }
                else
                {
                    var temp = Saved(src, AccumulationSlot, outputs[src.Index]!.Shape.ToArray());
                    ctx.InputGrads[k] = temp;
                    accumulate.Add((temp, g));
                }
            }
            long t0 = Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
            layer.Backward(ctx);
            foreach (var (temp, into) in accumulate) residual.Accumulate(temp, into);
            if (Profile is not null)
            {
                Device.Synchronize();
                Profile[li, 1] += System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds;
            }
            AfterLayerBackward?.Invoke(layer);
        }
    }

    /// <summary>
    /// Called during <see cref="Backward"/> as soon as a layer's parameter gradients are final (layers come in
    /// reverse order), on the thread running the backward pass: data parallelism starts reducing them here,
    /// while the earlier layers are still being differentiated.
    /// </summary>
    public Action<Layer>? AfterLayerBackward { get; set; }

    /// <summary>Saved slot, keyed by the forked tensor's layer, for a second reader's gradient before it is summed.</summary>
    const int AccumulationSlot = 1000;

    int[] Batched(int[] perSample) => [Batch, .. perSample];

    public void Dispose()
    {
        foreach (var b in buffers) b.Dispose();
        foreach (var t in savedInt.Values) t.Dispose();
        if (grads is not null) foreach (var g in grads) g?.Dispose();
        buffers.Clear(); free.Clear(); saved.Clear(); savedInt.Clear();
    }
}
