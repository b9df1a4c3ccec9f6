using System.Diagnostics;
using Xception.Gpu.Architecture;
using Xception.Gpu.Parallel;
using Xception.Gpu.Training;

namespace Xception.Gpu.Diagnostics;

/// <summary>Data-parallel training on <see cref="Replicas"/> devices: the time of a step and of its all-reduce.</summary>
/// <param name="Replicas">the devices the step ran on</param>
/// <param name="Batch">the global batch</param>
/// <param name="Steps">timed steps</param>
/// <param name="Seconds">the timed steps' wall time, the devices synchronized before the clock was read</param>
/// <param name="AllReduceSeconds">the part of it spent in the gradient all-reduce</param>
/// <param name="GradientBytes">the gradients summed per step</param>
public sealed record ScalingResult(int Replicas, int Batch, int Steps, double Seconds, double AllReduceSeconds, long GradientBytes)
{
    /// <summary>Training images per second.</summary>
    public double ImagesPerSecond => Batch * Steps / Seconds;
    /// <summary>Gradient bytes per second through the all-reduce (undefined for one replica, which sums nothing).</summary>
    public double AllReduceBytesPerSecond => GradientBytes * Steps / AllReduceSeconds;
}

/// <summary>
/// How training scales with replicas: the same global batch on 1, 2, ... N of the given devices (one untimed
/// warm-up step each), and the all-reduce alone, in one process and across MPI ranks. Inputs are seeded uniform
/// noise in [-1, 1]; labels cycle through the classes.
/// </summary>
public static class ScalingBench
{
    /// <summary>Times <paramref name="steps"/> SGD steps at global batch <paramref name="batch"/> on the first k devices, for every k.</summary>
    public static IEnumerable<ScalingResult> Replicas(XceptionConfig config, IReadOnlyList<Device> devices, int batch, int steps, bool syncBatchNorm, long bucketBytes)
    {
        var optimizer = new OptimizerSettings { Kind = OptimizerKind.Sgd, Momentum = 0.9f };
        using var source = XceptionBuilder.Build(config);
        source.Initialize(0);
        long gradientBytes = source.TrainableParams * 4;
        var rng = new Random(1);
        var x = new float[batch * config.ImageSize * config.ImageSize * config.InputChannels];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var b = new TrainBatch(x, batch, Enumerable.Range(0, batch).Select(i => i % config.Classes).ToArray(), null);
        for (int k = 1; k <= devices.Count; k++)
        {
            var use = devices.Take(k).ToList();
            using var dp = new DataParallel(() => XceptionBuilder.Build(config), source, use, optimizer, syncBatchNorm) { BucketBytes = bucketBytes };
            dp.Step(b, 0.01f, 0); // warm-up: kernels compiled, executors planned
            foreach (var d in use) d.Synchronize();
            var before = dp.AllReduceTime;
            var clock = Stopwatch.StartNew();
            for (int s = 1; s <= steps; s++) dp.Step(b, 0.01f, s);
            foreach (var d in use) d.Synchronize();
            yield return new ScalingResult(k, batch, steps, clock.Elapsed.TotalSeconds, (dp.AllReduceTime - before).TotalSeconds, gradientBytes);
        }
    }

    /// <summary>
    /// The in-process all-reduce alone over <paramref name="replicas"/> threads (no compute, so no waiting for a slower
    /// replica): seconds per round for <paramref name="floats"/> gradient values.
    /// </summary>
    public static double AllReduceAlone(int replicas, int floats, int rounds = 5)
    {
        var group = new LocalGroup(replicas);
        var buffers = Enumerable.Range(0, replicas).Select(_ => new float[floats]).ToArray();
        var clock = Stopwatch.StartNew();
        var threads = Enumerable.Range(0, replicas).Select(r => new Thread(() =>
        {
            var m = group.Member(r);
            for (int i = 0; i < rounds; i++) m.AllReduceSum(buffers[r]);
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        return clock.Elapsed.TotalSeconds / rounds;
    }

    /// <summary>
    /// MPI_Allreduce of <paramref name="floats"/> values across the ranks of <paramref name="mpi"/> (one untimed warm-up
    /// round): the slowest rank's seconds per round, the same on every rank.
    /// </summary>
    public static double MpiAllReduce(MpiCollective mpi, int floats, int rounds)
    {
        var grads = new float[floats];
        for (int i = 0; i < grads.Length; i++) grads[i] = i % 7;
        mpi.AllReduceSum(grads); // warm-up: connections, registration
        var clock = Stopwatch.StartNew();
        for (int r = 0; r < rounds; r++) mpi.AllReduceSum(grads);
        var all = new double[mpi.Size];
        all[mpi.Rank] = clock.Elapsed.TotalSeconds / rounds;
        mpi.AllReduceSum(all);
        return all.Max();
    }
}
