using System.Runtime.ExceptionServices;
using Xception.Gpu.Ops;

namespace Xception.Gpu.Inference;

public sealed partial class XceptionModel
{
    /// <summary>One caller's images, and what came of them.</summary>
    sealed class Request(float[] input, int count, int batch, bool softmax)
    {
        public float[] Input { get; } = input;
        public int Count { get; } = count;
        public int Batch { get; } = batch;
        public bool Softmax { get; } = softmax;
        public float[]? Result;
        public Exception? Error;
        public bool Done;
    }

    /// <summary>Held while the device runs; the device, its kernels and the executors are not thread-safe.</summary>
    readonly object gate = new();
    readonly Queue<Request> pending = new();
    bool disposed;

    long runs, requests;

    /// <summary>
    /// Device runs so far and the requests they served: Requests / Runs is how many concurrent calls were
    /// combined on average.
    /// </summary>
    public (long Runs, long Requests) Stats => (Interlocked.Read(ref runs), Interlocked.Read(ref requests));

    /// <summary>
    /// Serves a request, combined with every other that is waiting: a caller queues its request, then takes
    /// the device lock; whoever holds it runs everything queued so far as one sequence of batches. A request
    /// that another caller's run already served returns at once. This batches a server's concurrent
    /// requests without a thread of its own and without waiting for a batch to fill.
    /// </summary>
    float[] Run(Request request)
    {
        lock (pending) pending.Enqueue(request);
        lock (gate)
        {
            if (!request.Done)
            {
                ObjectDisposedException.ThrowIf(disposed, this);
                List<Request> group;
                lock (pending)
                {
                    group = [.. pending];
                    pending.Clear();
                }
                Serve(group);
            }
        }
        if (request.Error is { } e) ExceptionDispatchInfo.Throw(e);
        return request.Result!;
    }

    /// <summary>
    /// Runs the group's images together; when that fails, each request alone, so that an error reaches only
    /// the caller whose request caused it.
    /// </summary>
    void Serve(List<Request> group)
    {
        Interlocked.Increment(ref runs);
        Interlocked.Add(ref requests, group.Count);
        if (group.Count > 1)
        {
            try
            {
                var outputs = Execute(group);
                for (int i = 0; i < group.Count; i++) (group[i].Result, group[i].Done) = (outputs[i], true);
                return;
            }
            catch (Exception) when (!disposed) { }
        }
        foreach (var r in group)
        {
            try { r.Result = Execute([r])[0]; }
            catch (Exception e) { r.Error = e; }
            r.Done = true;
        }
    }

    /// <summary>
    /// The group's images in order, in runs of the largest batch any of them asked for; the rest in runs of
    /// descending powers of two (11 images: 8, 2, 1), so that the executors kept per batch size stay few
    /// (log2 of the batch) whatever counts callers send. Every op treats the images of a batch independently
    /// and sums in the same order at every batch size, so an image's result does not depend on its company
    /// (<c>ConcurrentCallsGiveTheSequentialResultsBitForBit</c> checks it).
    /// </summary>
    float[][] Execute(List<Request> group)
    {
        int per = ImageSize * ImageSize * Config.InputChannels;
        int outPer = Model.Output.OutputShape.Aggregate(1, (a, b) => a * b);
        int total = group.Sum(r => r.Count);
        var input = group.Count == 1 ? group[0].Input : group.SelectMany(r => r.Input).ToArray();
        var output = new float[(long)total * outPer];
        int batch = group.Max(r => r.Batch);
        for (int start = 0; start < total;)
        {
            int left = total - start;
            int n = left >= batch ? batch : 1 << System.Numerics.BitOperations.Log2((uint)left);
            using var x = Tensor.From(device, input.AsSpan(start * per, n * per).ToArray(), n, ImageSize, ImageSize, Config.InputChannels);
            Model.Executor(n, training: false).Forward(x).ToArray().CopyTo(output, (long)start * outPer);
            start += n;
        }
        float[]? probabilities = null;
        if (group.Any(r => r.Softmax))
        {
            using var t = Tensor.From(device, output, total, outPer);
            using var p = Tensor.Zeros(device, total, outPer);
            Loss.On(device).Softmax(t, p);
            probabilities = p.ToArray();
        }
        var results = new float[group.Count][];
        for (int i = 0, at = 0; i < group.Count; at += group[i].Count, i++)
            results[i] = (group[i].Softmax ? probabilities! : output).AsSpan(at * outPer, group[i].Count * outPer).ToArray();
        return results;
    }
}
