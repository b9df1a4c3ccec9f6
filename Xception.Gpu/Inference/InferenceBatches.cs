using Xception.Gpu.Graph;
using Xception.Gpu.Architecture;
using Xception.Gpu.Ops;

namespace Xception.Gpu.Inference;

/// <summary>One caller's images (preprocessed NHWC), the largest batch it allows, and whether it wants probabilities.</summary>
sealed record InferenceRequest(float[] Input, int Count, int Batch, bool Softmax);

/// <summary>The forward pass of a group of requests that <see cref="CallCombiner{TRequest, TResult}"/> combined.</summary>
static class InferenceBatches
{
    /// <summary>
    /// The group's images in order, in runs of the largest batch any of them asked for; the rest in runs of
    /// descending powers of two (11 images: 8, 2, 1), so that the executors kept per batch size stay few
    /// (log2 of the batch) whatever counts callers send. Every op treats the images of a batch independently
    /// and sums in the same order at every batch size, so an image's result does not depend on its company
    /// (<c>ConcurrentCallsGiveTheSequentialResultsBitForBit</c> checks it).
    /// </summary>
    public static float[][] Run(Model model, Device device, XceptionConfig config, IReadOnlyList<InferenceRequest> group)
    {
        int per = config.ImageSize * config.ImageSize * config.InputChannels;
        int outPer = model.Output.OutputShape.Aggregate(1, (a, b) => a * b);
        int total = group.Sum(r => r.Count);
        var input = group.Count == 1 ? group[0].Input : group.SelectMany(r => r.Input).ToArray();
        var output = new float[(long)total * outPer];
        int batch = group.Max(r => r.Batch);
        for (int start = 0; start < total;)
        {
            int left = total - start;
            int n = left >= batch ? batch : 1 << System.Numerics.BitOperations.Log2((uint)left);
            using var x = Tensor.From(device, input.AsSpan(start * per, n * per).ToArray(), n, config.ImageSize, config.ImageSize, config.InputChannels);
            model.Executor(n, training: false).Forward(x).ToArray().CopyTo(output, (long)start * outPer);
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
