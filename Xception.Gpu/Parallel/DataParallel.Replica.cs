using System.Diagnostics;
using Xception.Gpu.Graph;
using Xception.Gpu.Training;

namespace Xception.Gpu.Parallel;

/// <summary>
/// One replica's part of a synchronous step: its <see cref="ReplicaStep"/> (the same forward, loss and backward
/// as one device's), with the exchanges between the replicas around it.
/// </summary>
public sealed partial class DataParallel
{
    // share: this replica's images, or null when its process stops the run (see StopAll).
    StepResult RunReplica(int rank, TrainBatch? share, float lr, long step, float labelSmoothing)
    {
        var rep = replicas[rank];
        var member = group.Member(rank);
        bool alone = GlobalCount == 1;
        int global;
        StepResult? skipped;
        if (alone) (global, skipped) = (share?.Count ?? -1, share is { Count: 0 } ? StepResult.Skip(0, "an empty batch") : null);
        else (global, skipped) = ExchangeShares(member, share);
        if (skipped is not null) return skipped;
        if (share is null) throw new InvalidOperationException("unreachable: a stopping process never gets past the exchange");

        // Every replica freezes what the first one does (a caller may change it between steps).
        if (rank > 0) rep.Model.CopyTrainingModeFrom(replicas[0].Model);
        var sums = rep.Step.Forward(share, training: true, step, labelSmoothing, syncBatchNorm && !alone ? (member.AllReduceSum, global) : null);
        if (!alone)
        {
            var all = sums.ToArray();
            member.AllReduceSum(all);
            sums = MetricSums.FromArray(all);
        }
        var result = new StepResult(global, sums, true, null);
        if (!double.IsFinite(result.Loss)) return result with { Applied = false };

        if (alone) rep.Step.Backward();
        else
        {
            // From the share's mean loss to its part of the global mean loss.
            rep.Step.ScaleLossGradient(share.Count / (float)global);
            BackwardAndAllReduce(rank);
        }
        rep.Optimizer.Step(lr);
        return result;
    }

    /// <summary>
    /// Every replica learns every share's size: the global batch, whether all have an image, and whether a
    /// process stops the run (a share of -1). Returns the global batch, and the skipped step when a replica
    /// gets no image.
    /// </summary>
    (int Global, StepResult? Skipped) ExchangeShares(ICollective member, TrainBatch? share)
    {
        var counts = new double[GlobalCount];
        counts[member.Rank] = share?.Count ?? -1;
        member.AllReduceSum(counts);
        int stopping = Array.FindIndex(counts, c => c < 0);
        if (stopping >= 0)
        {
            int process = stopping / Count;
            throw new RunStoppedException(share is null
                ? "this process could not load its data; every process stops"
                : $"process {process} could not load its data (its error is printed by it); every process stops") { FailedProcess = process };
        }
        int global = (int)counts.Sum();
        int empty = Array.IndexOf(counts, 0.0);
        return empty < 0 ? (global, null)
            : (global, StepResult.Skip(global, $"a batch of {global} cannot be split over {GlobalCount} replicas (replica {empty} would get no image)"));
    }

    /// <summary>The backward pass and the sum of the gradients over all replicas, overlapped or after it; then the moving statistics' mean.</summary>
    void BackwardAndAllReduce(int rank)
    {
        var rep = replicas[rank];
        var member = group.Member(rank);
        if (Overlapped) BackwardOverlapped(rank, rep.Step.Executor, rep.Step.LossGradient);
        else
        {
            rep.Step.Backward();
            var clock = Stopwatch.StartNew();
            AllReduce(member, rep.Flat, rep.Model.Parameters.Where(p => p.Trainable).Select(p => p.Grad!).ToList(), 1f);
            if (rank == 0) { AllReduceTime += clock.Elapsed; AllReduceCalls++; }
        }
        if (!syncBatchNorm)
            AllReduce(member, rep.Flat, MovedStatistics(rep.Model), 1f / GlobalCount);
    }

    /// <summary>
    /// The moving statistics this step moved: those of batch norm layers that used batch statistics. Layers in
    /// inference mode (frozen) left theirs alone, so they are identical everywhere and averaging them could only
    /// round them differently.
    /// </summary>
    static List<Tensor<float>> MovedStatistics(Model m) =>
        m.Layers.Where(l => l.Parameters.Any(p => !p.Optimizable) && m.UsesBatchStatistics(l))
            .SelectMany(l => l.Parameters.Where(p => !p.Optimizable)).Select(p => p.Value!).ToList();

    /// <summary>Sums tensors over the replicas (one flat buffer, one all-reduce), then scales them.</summary>
    static void AllReduce(ICollective c, Dictionary<long, float[]> staging, List<Tensor<float>> tensors, float scale)
    {
        long length = tensors.Sum(t => (long)t.Length);
        if (!staging.TryGetValue(length, out var flat)) staging[length] = flat = new float[length];
        long at = 0;
        foreach (var t in tensors) { t.CopyTo(flat.AsSpan((int)at, t.Length)); at += t.Length; }
        c.AllReduceSum(flat);
        if (scale != 1f) for (long i = 0; i < flat.Length; i++) flat[i] *= scale;
        at = 0;
        foreach (var t in tensors) { t.CopyFrom(flat.AsSpan((int)at, t.Length)); at += t.Length; }
    }
}
