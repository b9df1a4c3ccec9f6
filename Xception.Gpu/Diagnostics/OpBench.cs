using System.Diagnostics;
using Xception.Gpu.Ops;

namespace Xception.Gpu.Diagnostics;

/// <summary>One timed run: the op, its shape, seconds per call and the work it did.</summary>
public sealed record BenchResult(OpShape Shape, string Pass, double Seconds, double Flops, double Bytes)
{
    public double GflopPerSecond => Flops / Seconds / 1e9;
    public double GBPerSecond => Bytes / Seconds / 1e9;
}

/// <summary>
/// Times ops on a device. Each measurement runs the op once to load and warm it, then repeats it until
/// at least <c>minSeconds</c> have passed (at least <c>minRepeats</c> times), synchronizing the device
/// before reading the clock. FLOPs count a multiply-add as two; bytes are the op's floor traffic (each
/// input read once, each output written once).
/// </summary>
public sealed class OpBench(Device device, double minSeconds = 0.5, int minRepeats = 2)
{
    public IEnumerable<BenchResult> Run(OpShape s, bool backward)
    {
        var x = Tensor.From(device, Random(s.N * s.H * s.W * s.C, 1), s.N, s.H, s.W, s.C);
        try
        {
            switch (s.Op)
            {
                case BenchOp.Pointwise: foreach (var r in Pointwise(s, x, backward)) yield return r; break;
                case BenchOp.Depthwise: foreach (var r in Depthwise(s, x, backward)) yield return r; break;
                case BenchOp.Conv: foreach (var r in Conv(s, x, backward)) yield return r; break;
                case BenchOp.Pool: foreach (var r in Pool(s, x, backward)) yield return r; break;
                case BenchOp.BatchNorm: foreach (var r in BatchNorm(s, x, backward)) yield return r; break;
            }
        }
        finally { x.Dispose(); }
    }

    IEnumerable<BenchResult> Pointwise(OpShape s, Tensor<float> x, bool backward)
    {
        using var w = Tensor.From(device, Random(s.C * s.O, 2), s.C, s.O);
        var g = Ops.Pointwise.Geometry(x.Shape, w.Shape, s.Stride);
        using var y = Tensor.Zeros(device, g.OutputShape());
        var op = Ops.Pointwise.On(device);
        double m = g.OutputPixels, flops = 2.0 * m * s.C * s.O;
        double bytes = 4.0 * (m * s.C + s.C * s.O + m * s.O);
        yield return Time(s, "forward", () => op.Forward(x, w, s.Stride, y), flops, bytes);
        if (!backward) yield break;
        using var dx = Tensor.Zeros(device, x.Shape.ToArray());
        using var dw = Tensor.Zeros(device, s.C, s.O);
        yield return Time(s, "backward input", () => op.BackwardInput(y, w, s.Stride, dx), flops, 4.0 * (m * s.O + s.C * s.O + (double)x.Length));
        yield return Time(s, "backward weight", () => op.BackwardWeight(x, y, s.Stride, dw), flops, bytes);
    }

    IEnumerable<BenchResult> Depthwise(OpShape s, Tensor<float> x, bool backward)
    {
        using var w = Tensor.From(device, Random(s.K * s.K * s.C, 2), s.K, s.K, s.C);
        var g = Ops.Depthwise.Geometry(x.Shape, w.Shape, s.Stride, s.Padding);
        using var y = Tensor.Zeros(device, g.OutputShape());
        var op = Ops.Depthwise.On(device);
        double flops = 2.0 * g.OutputLength * s.K * s.K, bytes = 4.0 * (x.Length + y.Length);
        yield return Time(s, "forward", () => op.Forward(x, w, s.Stride, s.Padding, y), flops, bytes);
        if (!backward) yield break;
        using var dx = Tensor.Zeros(device, x.Shape.ToArray());
        using var dw = Tensor.Zeros(device, w.Shape.ToArray());
        yield return Time(s, "backward input", () => op.BackwardInput(y, w, s.Stride, s.Padding, dx), flops, bytes);
        yield return Time(s, "backward weight", () => op.BackwardWeight(x, y, s.Stride, s.Padding, dw), flops, bytes);
    }

    IEnumerable<BenchResult> Conv(OpShape s, Tensor<float> x, bool backward)
    {
        using var w = Tensor.From(device, Random(s.K * s.K * s.C * s.O, 2), s.K, s.K, s.C, s.O);
        var g = Conv2D.Geometry(x.Shape, w.Shape, s.Stride, s.Padding);
        using var y = Tensor.Zeros(device, g.OutputShape());
        var op = Conv2D.On(device);
        double flops = 2.0 * g.OutputLength * s.K * s.K * s.C, bytes = 4.0 * (x.Length + y.Length + w.Length);
        yield return Time(s, "forward", () => op.Forward(x, w, s.Stride, s.Padding, y), flops, bytes);
        if (!backward) yield break;
        using var dx = Tensor.Zeros(device, x.Shape.ToArray());
        using var dw = Tensor.Zeros(device, w.Shape.ToArray());
        yield return Time(s, "backward input", () => op.BackwardInput(y, w, s.Stride, s.Padding, dx), flops, bytes);
        yield return Time(s, "backward weight", () => op.BackwardWeight(x, y, s.Stride, s.Padding, dw), flops, bytes);
    }

    IEnumerable<BenchResult> Pool(OpShape s, Tensor<float> x, bool backward)
    {
        var g = MaxPool.Geometry(x.Shape, s.K, s.Stride, s.Padding);
        using var y = Tensor.Zeros(device, g.OutputShape());
        using var am = Tensor.Zeros<int>(device, g.OutputShape());
        var op = MaxPool.On(device);
        double flops = (double)g.OutputLength * s.K * s.K; // comparisons
        yield return Time(s, "forward", () => op.Forward(x, s.K, s.Stride, s.Padding, y, am), flops, 4.0 * (x.Length + 2.0 * y.Length));
        if (!backward) yield break;
        using var dx = Tensor.Zeros(device, x.Shape.ToArray());
        yield return Time(s, "backward", () => op.Backward(y, am, s.K, s.Stride, s.Padding, dx), 0, 4.0 * (x.Length + 2.0 * y.Length));
    }

    IEnumerable<BenchResult> BatchNorm(OpShape s, Tensor<float> _, bool backward)
    {
        // Batch norm follows the pointwise convolution, so it sees O channels.
        using var x = Tensor.From(device, Random(s.N * s.H * s.W * s.O, 3), s.N, s.H, s.W, s.O);
        int c = s.O;
        var p = new BatchNormParams(Tensor.From(device, Ones(c), c), Tensor.Zeros(device, c), Tensor.Zeros(device, c), Tensor.From(device, Ones(c), c));
        try
        {
            using var y = Tensor.Zeros(device, x.Shape.ToArray());
            using var mean = Tensor.Zeros(device, c); using var invstd = Tensor.Zeros(device, c);
            var op = Ops.BatchNorm.On(device);
            double bytes = 4.0 * 2 * x.Length, flops = 4.0 * x.Length;
            yield return Time(s, "inference", () => op.ForwardInference(x, p, y), flops, bytes);
            yield return Time(s, "training", () => op.ForwardTraining(x, p, y, mean, invstd), 2 * flops, bytes);
            if (!backward) yield break;
            using var dx = Tensor.Zeros(device, x.Shape.ToArray());
            using var dg = Tensor.Zeros(device, c); using var db = Tensor.Zeros(device, c);
            yield return Time(s, "backward", () => op.BackwardTraining(y, x, p.Gamma, mean, invstd, dx, dg, db), 2 * flops, 4.0 * 3 * x.Length);
        }
        finally
        {
            p.Gamma.Dispose(); p.Beta.Dispose(); p.MovingMean.Dispose(); p.MovingVar.Dispose();
        }
    }

    BenchResult Time(OpShape s, string pass, Action run, double flops, double bytes)
    {
        run();
        device.Synchronize();
        int repeats = 0;
        var sw = Stopwatch.StartNew();
        while (repeats < minRepeats || sw.Elapsed.TotalSeconds < minSeconds)
        {
            run();
            repeats++;
            if (repeats % 4 == 0 || repeats >= minRepeats) device.Synchronize();
        }
        device.Synchronize();
        return new BenchResult(s, pass, sw.Elapsed.TotalSeconds / repeats, flops, bytes);
    }

    static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    static float[] Ones(int n) => Enumerable.Repeat(1f, n).ToArray();
}
