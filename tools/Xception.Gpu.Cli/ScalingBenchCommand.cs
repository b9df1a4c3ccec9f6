using Xception.Gpu.Diagnostics;
using Xception.Gpu.Architecture;
using Xception.Gpu.Parallel;

namespace Xception.Gpu.Cli;

/// <summary>`xception bench --devices`: the library's <see cref="Diagnostics.ScalingBench"/>, printed as a table.</summary>
static class ScalingBenchCommand
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
        long parameters;
        using (var m = XceptionBuilder.Build(config)) parameters = m.TrainableParams;
        long gradientBytes = parameters * 4;

        Console.WriteLine($"{modelName} {config.ImageSize}x{config.ImageSize}, {parameters:N0} trainable parameters ({gradientBytes / 1e6:F1} MB of gradients); global batch {batch}; " +
                          $"{steps} timed steps after 1 warm-up; batch norm {(placement.SyncBatchNorm ? "synchronized" : "per replica")}; " +
                          (placement.BucketBytes > 0 ? $"all-reduce overlapped with the backward pass in {placement.BucketBytes / (double)(1 << 20):G3} MB buckets" : "all-reduce after the backward pass"));
        Console.WriteLine(placement.Describe(batch));
        Console.WriteLine($"{"replicas",8} {"img/s",9} {"ms/step",10} {"all-reduce ms",14} {"GB/s",7} {"speed-up",9} {"efficiency",11}");
        double baseRate = 0;
        foreach (var r in ScalingBench.Replicas(config, placement.Devices, batch, steps, placement.SyncBatchNorm, placement.BucketBytes))
        {
            if (r.Replicas == 1) baseRate = r.ImagesPerSecond;
            string bandwidth = r.Replicas == 1 ? "-" : (r.AllReduceBytesPerSecond / 1e9).ToString("F2");
            Console.WriteLine($"{r.Replicas,8} {r.ImagesPerSecond,9:F1} {r.Seconds / steps * 1e3,10:F1} {r.AllReduceSeconds / steps * 1e3,14:F1} {bandwidth,7} " +
                              $"{r.ImagesPerSecond / baseRate,9:F2} {r.ImagesPerSecond / baseRate / r.Replicas,11:P0}");
        }
        if (n > 1)
        {
            double t = ScalingBench.AllReduceAlone(n, (int)parameters);
            Console.WriteLine($"all-reduce alone, {n} replicas, {gradientBytes / 1e6:F1} MB: {t * 1e3:F1} ms ({gradientBytes / t / 1e9:F2} GB/s of gradients)");
        }
        return 0;
    }

    /// <summary>Under mpirun: the time of MPI_Allreduce on the model's gradients alone, rank 0 printing.</summary>
    static int MpiAllReduce(Args a, MpiCollective mpi)
    {
        string modelName = ModelOption.Read(a, ModelPresets.Xception);
        int floats;
        using (var model = XceptionBuilder.Build(ModelPresets.Config(modelName))) floats = (int)model.TrainableParams;
        int rounds = a.Int("steps", 5, 1, 10000);
        double t = ScalingBench.MpiAllReduce(mpi, floats, rounds);
        if (mpi.Rank == 0)
            Console.WriteLine($"MPI_Allreduce over {mpi.Size} ranks, {modelName} gradients {floats * 4 / 1e6:F1} MB: " +
                              $"{t * 1e3:F1} ms (slowest rank), {floats * 4 / t / 1e9:F2} GB/s of gradients; {rounds} rounds");
        mpi.Dispose();
        return 0;
    }
}
