using Xception.Gpu.Diagnostics;
using Xception.Gpu.Architecture;

namespace Xception.Gpu.Cli;

static class BenchCommand
{
    public static CliCommand Definition => new("bench", "time the kernels on Xception's shapes (GFLOP/s, GB/s)", Run, """
        xception bench [--op OP] [--device D] [--batch N] [--image-size S] [--backward] [--min-seconds T]

        Times the kernels on Xception's own layer shapes (input S x S, default 299; batch N, default 8)
        plus the reference pointwise shape N x 28 x 28, 128 -> 128. Each row: the layer, the shape, the
        pass, milliseconds per call, GFLOP/s (a multiply-add counts 2) and GB/s of floor traffic (each
        input read once, each output written once). The device is synchronized before the clock is read.

        xception bench --model xception|xception-mini [--pass inference|training|both] [--device D] [--batch N]
                       [--image-size S] [--segments K] [--min-seconds T] [--cpu-threads T]

        The whole model: images per second and milliseconds per batch for inference (forward, batch norm
        with its moving statistics) and for a training step (forward, loss, backward, SGD update), and the
        rate of the forward's multiply-adds (a training step counts three times the forward's). On the CPU
        the instruction-set path of the micro-kernels is printed too (avx512, avx2 or portable). --segments
        times the segments study's variant: every separable layer's spatial convolution in K channel
        segments (a grouped convolution; 1 is a regular convolution, 0 the depthwise default).

        xception bench --devices L [--model xception-mini|xception] [--batch B] [--image-size S]
                       [--steps N] [--cpu-threads T] [--sync-bn]

        Data-parallel scaling: training steps of the model at global batch B (default 8 x replicas) on the
        first 1, 2, ..., all devices of L (e.g. cpu*2, cuda*4, cuda:0,cuda:1). Each row: replicas, images/s,
        milliseconds per step, milliseconds of it in the gradient all-reduce (copies and waiting included),
        the all-reduce's bandwidth (gradient bytes / time), speed-up and efficiency against one replica.
        Under mpirun with --distributed mpi: the time of MPI_Allreduce on the model's gradients alone.
        """)
    {
        Choice("op", ["pointwise", "depthwise", "conv", "pool", "bn", "all"], "which ops: pointwise, depthwise, conv, pool, bn or all (default all)", helpName: "OP"),
        Value("batch", "N", "images per call (default 8; with --devices: the global batch, default 8 x replicas)"),
        Value("image-size", "S", "input size S x S (default 299; with --devices and xception-mini: 32)"),
        Flag("backward", "also time the backward kernels"),
        Value("min-seconds", "T", "time each row for at least this long (default 0.5)"),
        Choice("model", ["xception-mini", "xception"], "the whole model to time (with --devices: the model to train; default xception-mini)"),
        Choice("pass", ["inference", "training", "both"], "with --model: which whole-model pass to time (default both)"),
        Value("steps", "N", "with --devices: training steps timed per row (default 5)"),
        Value("segments", "K", "with --model: every separable layer's spatial convolution in K channel segments (0, the default, is depthwise)"),
        ReplicaOptions.Group,
    };

    static int Run(Args a)
    {
        if (a.String("segments") is not null && (a.String("model") is null || a.String("devices") is not null))
            throw new UsageException("--segments times a whole model's variant: give it with --model and without --devices");
        if (a.String("devices") is not null) return ScalingBenchCommand.Run(a);
        if (a.String("model") is not null) return RunModel(a);
        var opName = a.String("op", "all").ToLowerInvariant();
        BenchOp[] ops = opName switch
        {
            "all" => Enum.GetValues<BenchOp>(),
            "pointwise" => [BenchOp.Pointwise],
            "depthwise" => [BenchOp.Depthwise],
            "conv" => [BenchOp.Conv],
            "pool" => [BenchOp.Pool],
            "bn" or "batchnorm" => [BenchOp.BatchNorm],
            _ => throw new UsageException($"--op must be pointwise, depthwise, conv, pool, bn or all, got '{opName}'"),
        };
        int batch = a.Int("batch", 8, 1, 4096);
        int size = a.Int("image-size", 299, 71, 4096);
        double minSeconds = a.Double("min-seconds", 0.5, 0, 600);
        using var device = Device.Open(a.String("device", "auto"));
        device.Precision = PrecisionOption.Read(a);
        Console.WriteLine($"device {device}{PrecisionOption.Describe(device)}; batch {batch}; image size {size}");
        Console.WriteLine($"{"op",-10} {"layer",-34} {"shape",-24} {"pass",-16} {"ms",10} {"GFLOP/s",9} {"GB/s",8}");
        var bench = new OpBench(device, minSeconds);
        foreach (var s in XceptionShapes.For(size, batch).Where(s => ops.Contains(s.Op)))
            foreach (var r in bench.Run(s, a.Flag("backward")))
                Console.WriteLine($"{Name(s.Op),-10} {s.Layer,-34} {s.ToString(),-24} {r.Pass,-16} {r.Seconds * 1e3,10:F3} " +
                                  $"{(r.Flops > 0 ? r.GflopPerSecond.ToString("F2") : "-"),9} {r.GBPerSecond,8:F2}");
        return 0;
    }

    static int RunModel(Args a)
    {
        if (a.String("op") is not null) throw new UsageException("--op times kernels and --model the whole model; give one of them");
        int batch = a.Int("batch", 8, 1, 4096);
        string modelName = ModelOption.Read(a, ModelPresets.Mini);
        var config = ModelOption.Config(a, ModelPresets.Mini);
        if (a.String("segments") is not null) config = config with { Segments = a.Int("segments", 0, 0, 4096) };
        config.Validate();
        double minSeconds = a.Double("min-seconds", 3, 0, 3600);
        string passName = a.String("pass", "both").ToLowerInvariant();
        ModelPass[] passes = passName switch
        {
            "inference" => [ModelPass.Inference],
            "training" => [ModelPass.Training],
            "both" => [ModelPass.Inference, ModelPass.Training],
            _ => throw new UsageException($"--pass must be inference, training or both, got '{passName}'"),
        };
        var spec = DeviceSpec.Parse(a.String("device", "auto"));
        int? threads = a.String("cpu-threads") is null ? null : a.Int("cpu-threads", 1, 1, Device.MaxCpuThreads);
        using var device = Device.Open(spec, threads);
        device.Precision = PrecisionOption.Read(a);
        string simd = device.IsCpu ? $"; SIMD {Xception.Gpu.Kernels.Cpu.Simd.Name}, {device.CpuCores} threads" : "";
        string segments = config.Segments == 0 ? "" : $" in {config.Segments} segment{(config.Segments == 1 ? "" : "s")}";
        Console.WriteLine($"device {device}{simd}{PrecisionOption.Describe(device)}; {modelName}{segments} {config.ImageSize}x{config.ImageSize}; batch {batch}");
        foreach (var pass in passes)
        {
            var r = ModelBench.Run(device, config, batch, pass, minSeconds);
            Console.WriteLine($"{modelName} {pass.ToString().ToLowerInvariant(),-9}  batch {batch}  {config.ImageSize}x{config.ImageSize}: " +
                              $"{r.ImagesPerSecond:F2} img/s ({r.SecondsPerBatch * 1e3:F0} ms/batch, {r.GflopPerSecond:F1} GFLOP/s, {r.Iterations} timed)");
        }
        return 0;
    }

    static string Name(BenchOp op) => op switch
    {
        BenchOp.Pointwise => "pointwise",
        BenchOp.Depthwise => "depthwise",
        BenchOp.Conv => "conv",
        BenchOp.Pool => "pool",
        _ => "bn",
    };
}
