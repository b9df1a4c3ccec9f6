using System.Diagnostics;
using Xception.Gpu.Models;
using Xception.Gpu.Parallel;
using Xception.Gpu.Training;

namespace Xception.Gpu.Cli;

/// <summary>`xception bench --devices`: training throughput on 1..N replicas and the time in the all-reduce.</summary>
static class ScalingBench
{
    public static int Run(Args a)
    {
        using var placement = new ReplicaOptions(a);
        if (placement.Mpi is { } mpi) return MpiAllReduce(a, mpi);
        int n = placement.Devices.Count;
        string modelName = ModelOption.Read(a, ModelPresets.Mini);
        var config = ModelOption.Config(a, ModelPresets.Mini);
        int batch = a.Int("batch", 8 * n, n, 65536);
        int steps = a.Int("steps", 5, 1, 100000);
        var optimizer = new OptimizerSettings { Kind = OptimizerKind.Sgd, Momentum = 0.9f };
        using var source = XceptionBuilder.Build(config);
        source.Initialize(0);
        long gradientBytes = source.TrainableParams * 4;
        var rng = new Random(1);
        var x = new float[batch * config.ImageSize * config.ImageSize * config.InputChannels];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var labels = Enumerable.Range(0, batch).Select(i => i % config.Classes).ToArray();
        var b = new TrainBatch(x, batch, labels, null);

        Console.WriteLine($"{modelName} {config.ImageSize}x{config.ImageSize}, {source.TotalParams:N0} parameters ({gradientBytes / 1e6:F1} MB of gradients); global batch {batch}; " +
                          $"{steps} timed steps after 1 warm-up; batch norm {(placement.SyncBatchNorm ? "synchronized" : "per replica")}; " +
                          (placement.BucketBytes > 0 ? $"all-reduce overlapped with the backward pass in {placement.BucketBytes / (double)(1 << 20):G3} MB buckets" : "all-reduce after the backward pass"));
        Console.WriteLine(placement.Describe(batch));
        Console.WriteLine($"{"replicas",8} {"img/s",9} {"ms/step",10} {"all-reduce ms",14} {"GB/s",7} {"speed-up",9} {"efficiency",11}");
        double baseRate = 0;
        for (int k = 1; k <= n; k++)
        {
            var devices = placement.Devices.Take(k).ToList();
            using var dp = new DataParallel(() => XceptionBuilder.Build(config), source, devices, optimizer, placement.SyncBatchNorm) { BucketBytes = placement.BucketBytes };
            dp.Step(b, 0.01f, 0); // warm-up: kernels compiled, executors planned
            foreach (var d in devices) d.Synchronize();
            var before = dp.AllReduceTime;
            var clock = Stopwatch.StartNew();
            for (int s = 1; s <= steps; s++) dp.Step(b, 0.01f, s);
            foreach (var d in devices) d.Synchronize();
            double seconds = clock.Elapsed.TotalSeconds;
            double reduce = (dp.AllReduceTime - before).TotalSeconds;
            double rate = batch * steps / seconds;
            if (k == 1) baseRate = rate;
            string bandwidth = k == 1 ? "-" : (gradientBytes * steps / reduce / 1e9).ToString("F2");
            Console.WriteLine($"{k,8} {rate,9:F1} {seconds / steps * 1e3,10:F1} {reduce / steps * 1e3,14:F1} {bandwidth,7} {rate / baseRate,9:F2} {rate / baseRate / k,11:P0}");
        }
        // The all-reduce alone (no compute, so no waiting for a slower replica): the host sum of the gradients.
        if (n > 1)
        {
            var group = new LocalGroup(n);
            int len = (int)source.TrainableParams;
            var buffers = Enumerable.Range(0, n).Select(_ => new float[len]).ToArray();
            var clock = Stopwatch.StartNew();
            const int rounds = 5;
            var threads = Enumerable.Range(0, n).Select(r => new Thread(() =>
            {
                var m = group.Member(r);
                for (int i = 0; i < rounds; i++) m.AllReduceSum(buffers[r]);
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            double t1 = clock.Elapsed.TotalSeconds / rounds;
            Console.WriteLine($"all-reduce alone, {n} replicas, {gradientBytes / 1e6:F1} MB: {t1 * 1e3:F1} ms ({gradientBytes / t1 / 1e9:F2} GB/s of gradients)");
        }
        return 0;
    }

    /// <summary>Under mpirun: the time of MPI_Allreduce on the model's gradients alone, rank 0 printing.</summary>
    static int MpiAllReduce(Args a, MpiCollective mpi)
    {
        string modelName = ModelOption.Read(a, ModelPresets.Xception);
        var config = ModelPresets.Config(modelName);
        using var model = XceptionBuilder.Build(config);
        var grads = new float[model.TrainableParams];
        for (int i = 0; i < grads.Length; i++) grads[i] = i % 7;
        int rounds = a.Int("steps", 5, 1, 10000);
        mpi.AllReduceSum(grads); // warm-up: connections, registration
        var clock = Stopwatch.StartNew();
        for (int r = 0; r < rounds; r++) mpi.AllReduceSum(grads);
        double t = clock.Elapsed.TotalSeconds / rounds;
        var all = new double[mpi.Size];
        all[mpi.Rank] = t;
        mpi.AllReduceSum(all);
        if (mpi.Rank == 0)
            Console.WriteLine($"MPI_Allreduce over {mpi.Size} ranks, {modelName} gradients {grads.Length * 4 / 1e6:F1} MB: " +
                              $"{all.Max() * 1e3:F1} ms (slowest rank), {grads.Length * 4 / all.Max() / 1e9:F2} GB/s of gradients; {rounds} rounds");
        mpi.Dispose();
        return 0;
    }
}
