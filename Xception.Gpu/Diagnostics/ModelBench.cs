using System.Diagnostics;
using Xception.Gpu.Graph;
using Xception.Gpu.Architecture;
using Xception.Gpu.Training;

namespace Xception.Gpu.Diagnostics;

/// <summary>Whole-model passes the benchmark times.</summary>
public enum ModelPass
{
    /// <summary>Forward in inference mode (batch norm with its moving statistics).</summary>
    Inference,
    /// <summary>One training step: forward, softmax cross-entropy, backward, the SGD update.</summary>
    Training,
}

/// <summary>One timed whole-model pass: images per second, time per batch, and the forward multiply-adds' rate.</summary>
public sealed record ModelBenchResult(ModelPass Pass, int Batch, int Iterations, double SecondsPerBatch, long ForwardMultiplyAdds)
{
    public double ImagesPerSecond => Batch / SecondsPerBatch;

    /// <summary>GFLOP/s counting a multiply-add as 2; a training step counts 3 x the forward's (forward, both gradients).</summary>
    public double GflopPerSecond => 2.0 * ForwardMultiplyAdds * Batch * (Pass == ModelPass.Training ? 3 : 1) / SecondsPerBatch / 1e9;
}

/// <summary>
/// Times the whole model on one device at one batch size: one untimed warm-up pass (kernel compilation, memory
/// plans), then passes until <c>minSeconds</c> have gone by (at least <c>minIterations</c>), with the device
/// synchronized before the clock is read. Inputs are seeded uniform noise in [-1, 1] (Keras' preprocessing range)
/// and labels cycle through the classes; the weights are Keras' initialization.
/// </summary>
public static class ModelBench
{
    public static ModelBenchResult Run(Runtime.Device device, XceptionConfig config, int batch, ModelPass pass,
        double minSeconds = 3, int minIterations = 2)
    {
        using var model = XceptionBuilder.Build(config.Validate());
        model.Initialize(0);
        model.Bind(device);
        var rng = new Random(1);
        var x = new float[(long)batch * config.ImageSize * config.ImageSize * config.InputChannels];
        for (long i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var labels = Enumerable.Range(0, batch).Select(i => i % config.Classes).ToArray();
        Action once;
        if (pass == ModelPass.Inference)
        {
            var ex = model.Executor(batch, training: false);
            using var input = Tensor.From(device, x, batch, config.ImageSize, config.ImageSize, config.InputChannels);
            once = () => { ex.Forward(input); device.Synchronize(); };
            return Time(once, pass, batch, model, minSeconds, minIterations);
        }
        var trainer = new SingleReplica(model, new OptimizerSettings());
        var tb = new TrainBatch(x, batch, labels, null);
        long step = 0;
        once = () =>
        {
            var r = trainer.Step(tb, 1e-3f, step++);
            if (!double.IsFinite(r.Loss)) throw new NonFiniteLossException($"benchmark step {step}: the loss is {r.Loss}");
            device.Synchronize();
        };
        return Time(once, pass, batch, model, minSeconds, minIterations);
    }

    static ModelBenchResult Time(Action once, ModelPass pass, int batch, Model model, double minSeconds, int minIterations)
    {
        once();
        var clock = Stopwatch.StartNew();
        int n = 0;
        while (n < minIterations || clock.Elapsed.TotalSeconds < minSeconds)
        {
            once();
            n++;
        }
        return new ModelBenchResult(pass, batch, n, clock.Elapsed.TotalSeconds / n, Cost.MultiplyAdds(model));
    }
}
