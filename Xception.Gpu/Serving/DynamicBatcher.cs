using System.Diagnostics;
using Xception.Gpu.Inference;

namespace Xception.Gpu.Serving;

/// <summary>
/// Dynamic batching in front of one <see cref="XceptionModel"/>, as a server needs it: requests from any number
/// of threads wait in a bounded queue, and one worker thread stacks what is queued into device batches of at most
/// <see cref="BatchingOptions.MaxBatchSize"/> images (in arrival order, a request never split), waiting up to
/// <see cref="BatchingOptions.MaxQueueDelayMicroseconds"/> for a batch to fill. Every image gets bit for bit the
/// result it gets alone (the model's guarantee: no op mixes the images of a batch, and each sums in the same order
/// at every batch size).
/// <para>
/// Overload is answered at once: a request that finds the queue full, that waits past the queue timeout, or that
/// arrives while draining fails with <see cref="RequestRejectedException"/>; a request whose token is cancelled
/// while queued leaves the queue and never runs. Grad-CAM explanations go through the same queue, each as a batch
/// of its own, so the model is only ever used from the worker.
/// </para>
/// The batcher uses the model but does not own it.
/// </summary>
public sealed class DynamicBatcher : IDisposable
{
    sealed class Work(float[] input, int count, bool explain, int? classIndex, string? layer)
    {
        public readonly float[] Input = input;
        public readonly int Count = count;
        public readonly bool Explain = explain;
        public readonly int? Class = classIndex;
        public readonly string? Layer = layer;
        public readonly TaskCompletionSource<object> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly long Enqueued = Stopwatch.GetTimestamp();
        public LinkedListNode<Work>? Node;      // set while queued
        public CancellationTokenRegistration Cancel;
        public Timer? Timeout;
    }

    readonly XceptionModel model;
    readonly object sync = new();
    readonly LinkedList<Work> queue = new();
    readonly Thread worker;
    readonly TaskCompletionSource drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly int per, outPer;
    int queuedImages;
    bool accepting = true, disposed;

    public DynamicBatcher(XceptionModel model, BatchingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        this.model = model;
        Options = options.Validate();
        Stats = new ModelStats(options.MaxBatchSize);
        per = model.ImageSize * model.ImageSize * model.Config.InputChannels;
        outPer = model.Model.Output.OutputShape.Aggregate(1, (a, b) => a * b);
        worker = new Thread(Loop) { IsBackground = true, Name = "xception batcher" };
        worker.Start();
    }

    public XceptionModel Model => model;
    public BatchingOptions Options { get; }
    public ModelStats Stats { get; }

    /// <summary>Values per output row: the classes (probabilities) or the feature size (embeddings).</summary>
    public int OutputSize => outPer;

    /// <summary>False once <see cref="DrainAsync"/> or <see cref="Dispose"/> was called.</summary>
    public bool Accepting { get { lock (sync) return accepting; } }

    /// <summary>
    /// Runs <paramref name="count"/> preprocessed NHWC images (as <see cref="XceptionModel.Logits"/> takes them)
    /// and returns [count, <see cref="OutputSize"/>]: softmax probabilities for a model with its classifier, else
    /// the model's output (the pooled embeddings of a feature model).
    /// </summary>
    public async Task<float[]> InferAsync(float[] input, int count, CancellationToken cancel = default)
    {
        CheckImages(input, count);
        return (float[])await Enqueue(new Work(input, count, explain: false, null, null), cancel).ConfigureAwait(false);
    }

    /// <summary>
    /// Grad-CAM of one preprocessed image (see <see cref="XceptionModel.Explain(ReadOnlySpan{float}, int, int?, string?, int)"/>):
    /// <paramref name="classIndex"/> null explains the top class.
    /// </summary>
    public async Task<Explanation> ExplainAsync(float[] input, int? classIndex = null, string? layer = null, CancellationToken cancel = default)
    {
        Refuse(() => model.CheckExplain(classIndex, layer));
        CheckImages(input, 1);
        return (Explanation)await Enqueue(new Work(input, 1, explain: true, classIndex, layer), cancel).ConfigureAwait(false);
    }

    /// <summary>The model's own checks of a request (<see cref="XceptionModel.CheckInput(ReadOnlySpan{float}, int)"/>), before it is queued, and the max batch size.</summary>
    void CheckImages(float[] input, int count)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (count < 1 || count > Options.MaxBatchSize)
            throw new BadRequestException($"a request holds 1 to {Options.MaxBatchSize} images (the max batch size), got {count}");
        Refuse(() => model.CheckInput(input, count));
    }

    /// <summary>The model's refusal of a request as the request's fault.</summary>
    static void Refuse(Action check)
    {
        try { check(); }
        catch (Exception e) when (e is ShapeException or InferenceInputException) { throw new BadRequestException(e.Message, e); }
    }

    Task<object> Enqueue(Work w, CancellationToken cancel)
    {
        cancel.ThrowIfCancellationRequested();
        lock (sync)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (!accepting) throw new RequestRejectedException("the server is shutting down and takes no new requests");
            if (queue.Count >= Options.MaxQueueSize)
                throw new RequestRejectedException($"the queue is full ({Options.MaxQueueSize} requests wait for the device)");
            w.Node = queue.AddLast(w);
            queuedImages += w.Count;
            Stats.Enqueued();
            if (cancel.CanBeCanceled) w.Cancel = cancel.Register(() => Leave(w, () => w.Done.TrySetCanceled(cancel)));
            if (Options.QueueTimeoutMilliseconds is { } ms)
                w.Timeout = new Timer(_ => Leave(w, () => w.Done.TrySetException(
                    new RequestRejectedException($"the request waited {ms} ms in the queue without reaching the device (the queue timeout)"))), null, ms, System.Threading.Timeout.Infinite);
            Monitor.PulseAll(sync);
        }
        return w.Done.Task;
    }

    /// <summary>Takes a request that is still queued out of the queue and fails it with <paramref name="fail"/>.</summary>
    void Leave(Work w, Action fail)
    {
        lock (sync)
        {
            if (w.Node is null) return; // already taken into a batch, or gone
            Remove(w);
            Monitor.PulseAll(sync);
        }
        Stats.Dequeued();
        fail();
    }

    /// <summary>Unlinks a queued request (under the lock). Unregister, unlike Dispose, never waits for a running callback.</summary>
    void Remove(Work w)
    {
        queue.Remove(w.Node!);
        w.Node = null;
        queuedImages -= w.Count;
        w.Cancel.Unregister();
        w.Timeout?.Dispose();
    }

    void Loop()
    {
        while (true)
        {
            List<Work> batch;
            lock (sync)
            {
                while (queue.Count == 0)
                {
                    if (!accepting)
                    {
                        drained.TrySetResult();
                        if (disposed) return;
                    }
                    Monitor.Wait(sync);
                }
                if (Options.MaxQueueDelayMicroseconds > 0 && accepting && !queue.First!.Value.Explain)
                {
                    long deadline = queue.First.Value.Enqueued + Options.MaxQueueDelayMicroseconds * Stopwatch.Frequency / 1_000_000;
                    while (queue.Count > 0 && queuedImages < Options.MaxBatchSize && accepting)
                    {
                        var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
                        if (left <= TimeSpan.Zero) break;
                        Monitor.Wait(sync, left);
                    }
                    if (queue.Count == 0) continue;
                }
                batch = Take();
            }
            Run(batch);
        }
    }

    /// <summary>The next batch (under the lock): an explanation alone, or requests in order while they fit.</summary>
    List<Work> Take()
    {
        var batch = new List<Work>();
        int images = 0;
        while (queue.First is { } node)
        {
            var w = node.Value;
            if (batch.Count > 0 && (w.Explain || batch[0].Explain || images + w.Count > Options.MaxBatchSize)) break;
            Remove(w);
            batch.Add(w);
            images += w.Count;
        }
        return batch;
    }

    void Run(List<Work> batch)
    {
        long start = Stopwatch.GetTimestamp();
        foreach (var w in batch) Stats.Queued(Stopwatch.GetElapsedTime(w.Enqueued, start));
        try
        {
            if (batch.Count > 1)
            {
                try
                {
                    Complete(batch, Execute(batch), start);
                    return;
                }
                catch (Exception) { } // each alone below, so that an error reaches only the request that caused it
            }
            foreach (var w in batch)
            {
                long alone = Stopwatch.GetTimestamp();
                try { Complete([w], Execute([w]), alone); }
                catch (Exception e) { w.Done.TrySetException(e); }
            }
        }
        finally
        {
            foreach (var _ in batch) Stats.Dequeued();
        }
    }

    object[] Execute(List<Work> batch)
    {
        if (batch[0].Explain)
        {
            var w = batch[0];
            return [model.Explain(w.Input, 1, w.Class, w.Layer, batch: 1)[0]];
        }
        int total = batch.Sum(w => w.Count);
        var input = batch.Count == 1 ? batch[0].Input : batch.SelectMany(w => w.Input).ToArray();
        var output = model.Config.IncludeTop ? model.Probabilities(input, total, Options.MaxBatchSize) : model.Logits(input, total, Options.MaxBatchSize);
        var results = new object[batch.Count];
        for (int i = 0, at = 0; i < batch.Count; at += batch[i].Count, i++)
            results[i] = output.AsSpan(at * outPer, batch[i].Count * outPer).ToArray();
        return results;
    }

    void Complete(List<Work> batch, object[] results, long start)
    {
        Stats.Executed(batch.Sum(w => w.Count), batch.Count, Stopwatch.GetElapsedTime(start));
        for (int i = 0; i < batch.Count; i++) batch[i].Done.TrySetResult(results[i]);
    }

    /// <summary>
    /// Runs the model once at each batch size the batcher will use (the max batch size and the powers of two
    /// below it: a batch of 7 runs as 4, 2 and 1, see <see cref="XceptionModel.Logits"/>), so that the first
    /// requests do not pay for planning memory and compiling kernels. Call before serving.
    /// </summary>
    public void WarmUp()
    {
        var sizes = new SortedSet<int> { Options.MaxBatchSize };
        for (int b = 1; b < Options.MaxBatchSize; b *= 2) sizes.Add(b);
        foreach (int n in sizes) model.Logits(new float[(long)n * per], n, n);
    }

    /// <summary>
    /// Stops taking requests (new ones are rejected) and completes when every request already accepted has been
    /// answered.
    /// </summary>
    public Task DrainAsync()
    {
        lock (sync)
        {
            accepting = false;
            Monitor.PulseAll(sync);
        }
        return drained.Task;
    }

    /// <summary>Rejects what is still queued, lets a running batch finish and stops the worker.</summary>
    public void Dispose()
    {
        List<Work> left;
        lock (sync)
        {
            if (disposed) return;
            accepting = false;
            disposed = true;
            left = [.. queue];
            foreach (var w in left) Remove(w);
            Monitor.PulseAll(sync);
        }
        foreach (var w in left)
        {
            Stats.Dequeued();
            w.Done.TrySetException(new RequestRejectedException("the server stopped before the request reached the device"));
        }
        worker.Join();
    }
}
