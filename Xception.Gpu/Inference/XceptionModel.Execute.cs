using Xception.Gpu.Ops;

namespace Xception.Gpu.Inference;

public sealed partial class XceptionModel
{
    /// <summary>One caller's images, and how to return them.</summary>
    sealed record Request(float[] Input, int Count, int Batch, bool Softmax);

    /// <summary>The device lock and the queue of concurrent calls (<see cref="CallCombiner{TRequest, TResult}"/>).</summary>
    readonly CallCombiner<Request, float[]> calls;

    /// <summary>
    /// Device runs so far and the requests they served: Requests / Runs is how many concurrent calls were
    /// combined on average.
    /// </summary>
    public (long Runs, long Requests) Stats => calls.Stats;

    /// <summary>Serves a request, combined with every other that is waiting (see <see cref="CallCombiner{TRequest, TResult}"/>).</summary>
    float[] Run(Request request) => calls.Run(request);

    /// <summary>
    /// The group's images in order, in runs of the largest batch any of them asked for; the rest in runs of
    /// descending powers of two (11 images: 8, 2, 1), so that the executors kept per batch size stay few
    /// (log2 of the batch) whatever counts callers send. Every op treats the images of a batch independently
    /// and sums in the same order at every batch size, so an image's result does not depend on its company
    /// (<c>ConcurrentCallsGiveTheSequentialResultsBitForBit</c> checks it).
    /// </summary>
    float[][] Execute(IReadOnlyList<Request> group)
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
