using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;
using Xception.Gpu.Kernels.Cpu;

namespace Xception.Gpu.Ops;

/// <summary>
/// Synchronized batch norm across data-parallel replicas: sums every replica computes are added over all of
/// them (<paramref name="AllReduceSum"/> replaces a device vector by its sum over the replicas), and the
/// statistics cover <paramref name="GlobalRows"/> rows, the global batch's, so N replicas normalize exactly as
/// one device would with the whole batch.
/// </summary>
public sealed record BatchStatsSync(Action<ArrayView<float>> AllReduceSum, int GlobalRows);

/// <summary>The tensors of one batch-normalization layer, all [C].</summary>
public sealed record BatchNormParams(Tensor<float> Gamma, Tensor<float> Beta, Tensor<float> MovingMean, Tensor<float> MovingVar);

/// <summary>
/// Batch normalization over the last axis, Keras semantics: epsilon 1e-3, momentum 0.99; training
/// normalizes with the batch mean and biased variance and moves the moving statistics
/// (moving = momentum * moving + (1 - momentum) * batch); inference uses the moving statistics.
/// Training forward saves mean and 1/std per channel for the backward pass.
/// </summary>
public sealed class BatchNorm
{
    const string Name = "batchnorm";
    public const float DefaultEpsilon = 1e-3f, DefaultMomentum = 0.99f;

    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int, int, ArrayView<float>> sqdevPartials;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, float, float, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> statistics;
    readonly Action<KernelConfig, ArrayView<float>, int, float, ArrayView<float>> inverseStd;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, ArrayView<float>> normalize;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<float>> backwardPartials;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<float>> backwardInput;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, ArrayView<float>> backwardFrozen;

    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, ArrayView<float>>? cpuNormalize;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, ArrayView<float>>? cpuBackward;

    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormCpuArgs, ArrayView<float>>? cpuTraining;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormCpuArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>? cpuTrainingBackward;

    BatchNorm(Device d)
    {
        this.d = d;
        if (!d.UsesGpuKernels)
        {
            cpuTraining = d.Load("batchnorm.cpu_simd.normalize_training", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormCpuArgs, ArrayView<float>>(ElementwiseCpuKernels.NormalizeTraining));
            cpuTrainingBackward = d.Load("batchnorm.cpu_simd.backward_training", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormCpuArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ElementwiseCpuKernels.NormalizeBackwardTraining));
            cpuNormalize = d.Load("batchnorm.cpu_simd.normalize", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, ArrayView<float>>(ElementwiseCpuKernels.Normalize));
            cpuBackward = d.Load("batchnorm.cpu_simd.backward", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, ArrayView<float>>(ElementwiseCpuKernels.NormalizeBackward));
        }
        sqdevPartials = d.UsesGpuKernels ? d.Load("batchnorm.sqdev_partials", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int, int, ArrayView<float>>(BatchNormKernels.SquaredDeviationPartials)) : null!;
        statistics = d.Load("batchnorm.statistics", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, float, float, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BatchNormKernels.Statistics));
        inverseStd = d.Load("batchnorm.inverse_std", a => a.LoadStreamKernel<ArrayView<float>, int, float, ArrayView<float>>(BatchNormKernels.InverseStd));
        normalize = d.UsesGpuKernels ? d.Load("batchnorm.normalize", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, ArrayView<float>>(BatchNormKernels.Normalize)) : null!;
        backwardPartials = d.UsesGpuKernels ? d.Load("batchnorm.backward_partials", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<float>>(BatchNormKernels.BackwardPartials)) : null!;
        backwardInput = d.UsesGpuKernels ? d.Load("batchnorm.backward_input", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<float>>(BatchNormKernels.BackwardInput)) : null!;
        backwardFrozen = d.UsesGpuKernels ? d.Load("batchnorm.backward_frozen", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, ArrayView<float>>(BatchNormKernels.BackwardInputFrozen)) : null!;
    }

    public static BatchNorm On(Device d) => d.Op(x => new BatchNorm(x));

    void CheckParams(Tensor<float> x, BatchNormParams p)
    {
        Expect.Device(Name, d, ("gamma", p.Gamma), ("beta", p.Beta), ("moving_mean", p.MovingMean), ("moving_variance", p.MovingVar));
        int c = x.Shape[-1];
        Expect.Dims(Name, "gamma", p.Gamma, c);
        Expect.Dims(Name, "beta", p.Beta, c);
        Expect.Dims(Name, "moving_mean", p.MovingMean, c);
        Expect.Dims(Name, "moving_variance", p.MovingVar, c);
    }

    /// <summary>
    /// Training forward: y from batch statistics; writes the batch mean and 1/std into
    /// <paramref name="mean"/> and <paramref name="invstd"/> ([C], kept for backward) and moves the moving
    /// statistics.
    /// </summary>
    public void ForwardTraining(Tensor<float> x, BatchNormParams p, Tensor<float> y, Tensor<float> mean, Tensor<float> invstd,
        float epsilon = DefaultEpsilon, float momentum = DefaultMomentum, BatchStatsSync? sync = null)
    {
        Expect.Device(Name, d, ("input", x), ("output", y), ("saved mean", mean), ("saved 1/std", invstd));
        CheckParams(x, p);
        Expect.SameShape(Name, "output", y, "input", x);
        int rows = x.Shape.Rows, c = x.Shape[-1];
        Expect.Dims(Name, "saved mean", mean, c);
        Expect.Dims(Name, "saved 1/std", invstd, c);
        var red = Reductions.On(d);
        if (cpuTraining is not null && sync is null)
        {
            // Three launches: column sums, squared deviations (adding the sums' partial rows), then statistics and
            // normalization together (adding both partials).
            var sumPartials = red.ColumnPartials(x.View, x.View, x.View, x.View, rows, c, 0, 1, ColumnSum.Plain, ScratchSlot.RowPartials);
            var sqPartials = red.ColumnPartials(x.View, x.View, sumPartials, x.View, rows, c, rows, d.CpuCores, ColumnSum.SquaredDeviation, ScratchSlot.MorePartials);
            cpuTraining(d.CpuWorkers, x.View, sumPartials, sqPartials, p.Gamma.View, p.Beta.View, mean.View, invstd.View,
                p.MovingMean.View, p.MovingVar.View, Args(rows, c, rows, epsilon, momentum), y.View);
            return;
        }
        var sums = d.Scratch(ScratchSlot.Statistics, 2L * c);
        var sum = sums.SubView(0, c);
        var sqdev = sums.SubView(c, c);
        int statRows = sync?.GlobalRows ?? rows;
        red.SumColumns(x.View, rows, c, 0f, sum);
        sync?.AllReduceSum(sum);
        if (red.HasCpuColumnSums)
        {
            red.ColumnSums(x.View, x.View, sum, sum, rows, c, statRows, ColumnSum.SquaredDeviation, 0f, sqdev);
            sync?.AllReduceSum(sqdev);
            statistics(d.GridFor(c), sum, sqdev, statRows, c, epsilon, momentum, mean.View, invstd.View, p.MovingMean.View, p.MovingVar.View);
            Normalize(x, mean.View, invstd.View, p, y);
            return;
        }
        var (chunkRows, chunks) = red.Chunking(rows, c);
        var partial = d.Scratch(ScratchSlot.RowPartials, (long)chunks * c);
        sqdevPartials(d.GridFor((long)chunks * c), x.View, sum, rows, c, chunkRows, statRows, partial);
        red.SumRows(partial, chunks, c, 0f, sqdev);
        sync?.AllReduceSum(sqdev);
        statistics(d.GridFor(c), sum, sqdev, statRows, c, epsilon, momentum, mean.View, invstd.View, p.MovingMean.View, p.MovingVar.View);
        normalize(d.GridFor(x.Length), x.View, mean.View, invstd.View, p.Gamma.View, p.Beta.View, rows, c, y.View);
    }

    /// <summary>Inference forward with the moving statistics.</summary>
    public void ForwardInference(Tensor<float> x, BatchNormParams p, Tensor<float> y, float epsilon = DefaultEpsilon)
    {
        Expect.Device(Name, d, ("input", x), ("output", y));
        CheckParams(x, p);
        Expect.SameShape(Name, "output", y, "input", x);
        int c = x.Shape[-1];
        var invstd = d.Scratch(ScratchSlot.Statistics, c);
        inverseStd(d.GridFor(c), p.MovingVar.View, c, epsilon, invstd);
        Normalize(x, p.MovingMean.View, invstd, p, y);
    }

    void Normalize(Tensor<float> x, ArrayView<float> mean, ArrayView<float> invstd, BatchNormParams p, Tensor<float> y)
    {
        int rows = x.Shape.Rows, c = x.Shape[-1];
        if (cpuNormalize is not null) cpuNormalize(d.CpuWorkers, x.View, mean, invstd, p.Gamma.View, p.Beta.View, rows, c, 0, d.CpuCores, y.View);
        else normalize(d.GridFor(x.Length), x.View, mean, invstd, p.Gamma.View, p.Beta.View, rows, c, y.View);
    }

    /// <summary>Training backward: dx, dgamma = sum dy * xhat, dbeta = sum dy, from the saved statistics.</summary>
    public void BackwardTraining(Tensor<float> dy, Tensor<float> x, Tensor<float> gamma, Tensor<float> mean, Tensor<float> invstd,
        Tensor<float> dx, Tensor<float> dgamma, Tensor<float> dbeta, BatchStatsSync? sync = null)
    {
        Expect.Device(Name, d, ("output gradient", dy), ("input", x), ("gamma", gamma), ("saved mean", mean), ("saved 1/std", invstd),
            ("input gradient", dx), ("dgamma", dgamma), ("dbeta", dbeta));
        Expect.SameShape(Name, "output gradient", dy, "input", x);
        Expect.SameShape(Name, "input gradient", dx, "input", x);
        int rows = x.Shape.Rows, c = x.Shape[-1];
        foreach (var (n, t) in new[] { ("gamma", gamma), ("saved mean", mean), ("saved 1/std", invstd), ("dgamma", dgamma), ("dbeta", dbeta) })
            Expect.Dims(Name, n, t, c);
        if (cpuTrainingBackward is not null && sync is null)
        {
            // Two launches: the column sums, then dbeta, dgamma and dx together (adding the partial rows).
            var partial = Reductions.On(d).ColumnPartials(dy.View, x.View, mean.View, invstd.View, rows, c, rows, 1, ColumnSum.NormalizedProducts, ScratchSlot.RowPartials);
            cpuTrainingBackward(d.CpuWorkers, dy.View, x.View, mean.View, invstd.View, gamma.View, partial, Args(rows, c, rows, 0f, 0f),
                dbeta.View, dgamma.View, dx.View);
            return;
        }
        var sums = d.Scratch(ScratchSlot.Statistics, 2L * c);
        BackwardSums(dy, x, mean.View, invstd.View, sums);
        // dgamma and dbeta are this replica's share; the gradient all-reduce adds the shares. dx needs the
        // global sums, since every row's normalization depends on the whole batch's statistics.
        sums.SubView(0, c).CopyTo(dbeta.View);
        sums.SubView(c, c).CopyTo(dgamma.View);
        sync?.AllReduceSum(sums);
        if (cpuBackward is not null)
            cpuBackward(d.CpuWorkers, dy.View, x.View, mean.View, invstd.View, gamma.View, sums, rows, c, sync?.GlobalRows ?? rows, d.CpuCores, dx.View);
        else backwardInput(d.GridFor(x.Length), dy.View, x.View, mean.View, invstd.View, gamma.View, sums, rows, c, sync?.GlobalRows ?? rows, dx.View);
    }

    BatchNormCpuArgs Args(int rows, int c, int statRows, float epsilon, float momentum) => new()
    {
        Rows = rows, Cols = c, PartialRows = d.CpuCores, StatRows = statRows, Units = d.CpuCores, Epsilon = epsilon, Momentum = momentum,
    };

    /// <summary>sums[0, c) = column sums of dy (dbeta), sums[c, 2c) = of dy * (x - mean) * invstd (dgamma).</summary>
    void BackwardSums(Tensor<float> dy, Tensor<float> x, ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> sums)
    {
        int rows = x.Shape.Rows, c = x.Shape[-1];
        var red = Reductions.On(d);
        if (red.HasCpuColumnSums)
        {
            red.ColumnSums(dy.View, x.View, mean, invstd, rows, c, rows, ColumnSum.NormalizedProducts, 0f, sums);
            return;
        }
        var (chunkRows, chunks) = red.Chunking(rows, c);
        var partial = d.Scratch(ScratchSlot.RowPartials, (long)chunks * 2 * c);
        backwardPartials(d.GridFor((long)chunks * c), dy.View, x.View, mean, invstd, rows, c, chunkRows, partial);
        red.SumRows(partial, chunks, 2 * c, 0f, sums);
    }

    /// <summary>dx = dy * gamma * invstd (statistics held fixed).</summary>
    void BackwardFrozen(Tensor<float> dy, ArrayView<float> invstd, ArrayView<float> gamma, Tensor<float> dx)
    {
        int rows = dy.Shape.Rows, c = dy.Shape[-1];
        if (cpuBackward is not null)
            cpuBackward(d.CpuWorkers, dy.View, dy.View, invstd, invstd, gamma, invstd, rows, c, 0, d.CpuCores, dx.View);
        else backwardFrozen(d.GridFor(dy.Length), dy.View, invstd, gamma, rows, c, dx.View);
    }

    /// <summary>
    /// Inference-mode backward (a frozen layer, as Keras' BatchNormalization with training=False): the
    /// statistics are constants, dx = dy * gamma / sqrt(moving_var + eps); dgamma and dbeta as in training
    /// but with xhat from the moving statistics.
    /// </summary>
    public void BackwardInference(Tensor<float> dy, Tensor<float> x, BatchNormParams p, Tensor<float> dx, Tensor<float> dgamma, Tensor<float> dbeta,
        float epsilon = DefaultEpsilon)
    {
        Expect.Device(Name, d, ("output gradient", dy), ("input", x), ("input gradient", dx), ("dgamma", dgamma), ("dbeta", dbeta));
        CheckParams(x, p);
        Expect.SameShape(Name, "output gradient", dy, "input", x);
        Expect.SameShape(Name, "input gradient", dx, "input", x);
        int rows = x.Shape.Rows, c = x.Shape[-1];
        var red = Reductions.On(d);
        var sums = d.Scratch(ScratchSlot.Statistics, 3L * c);
        var invstd = sums.SubView(2L * c, c);
        inverseStd(d.GridFor(c), p.MovingVar.View, c, epsilon, invstd);
        BackwardSums(dy, x, p.MovingMean.View, invstd, sums.SubView(0, 2L * c));
        BackwardFrozen(dy, invstd, p.Gamma.View, dx);
        sums.SubView(0, c).CopyTo(dbeta.View);
        sums.SubView(c, c).CopyTo(dgamma.View);
    }

    /// <summary>
    /// The input gradient alone of the inference-mode backward, dx = dy * gamma / sqrt(moving_var + eps): a frozen
    /// layer's, whose gamma and beta take no gradient.
    /// </summary>
    public void BackwardInputFrozen(Tensor<float> dy, BatchNormParams p, Tensor<float> dx, float epsilon = DefaultEpsilon)
    {
        Expect.Device(Name, d, ("output gradient", dy), ("input gradient", dx));
        CheckParams(dy, p);
        Expect.SameShape(Name, "input gradient", dx, "output gradient", dy);
        int c = dy.Shape[-1];
        var invstd = d.Scratch(ScratchSlot.Statistics, c);
        inverseStd(d.GridFor(c), p.MovingVar.View, c, epsilon, invstd);
        BackwardFrozen(dy, invstd, p.Gamma.View, dx);
    }

    /// <summary>Float64 reference over x seen as [rows, C].</summary>
    internal static class Reference
    {
        public static (double[] Y, double[] Mean, double[] Var) ForwardTraining(double[] x, double[] gamma, double[] beta, int rows, int c, double eps)
        {
            var mean = new double[c]; var vr = new double[c];
            for (int r = 0; r < rows; r++) for (int j = 0; j < c; j++) mean[j] += x[r * c + j] / rows;
            for (int r = 0; r < rows; r++) for (int j = 0; j < c; j++) { double dd = x[r * c + j] - mean[j]; vr[j] += dd * dd / rows; }
            var y = new double[x.Length];
            for (int i = 0; i < x.Length; i++) { int j = i % c; y[i] = (x[i] - mean[j]) / Math.Sqrt(vr[j] + eps) * gamma[j] + beta[j]; }
            return (y, mean, vr);
        }

        public static double[] ForwardInference(double[] x, double[] gamma, double[] beta, double[] mm, double[] mv, int c, double eps)
        {
            var y = new double[x.Length];
            for (int i = 0; i < x.Length; i++) { int j = i % c; y[i] = (x[i] - mm[j]) / Math.Sqrt(mv[j] + eps) * gamma[j] + beta[j]; }
            return y;
        }

        /// <summary>Gradients of sum(dy * y) through the batch statistics: (dx, dgamma, dbeta).</summary>
        public static (double[] Dx, double[] Dgamma, double[] Dbeta) BackwardTraining(double[] x, double[] gamma, double[] dy, int rows, int c, double eps)
        {
            var (_, mean, vr) = ForwardTraining(x, gamma, new double[c], rows, c, eps);
            var dg = new double[c]; var db = new double[c];
            for (int i = 0; i < x.Length; i++)
            {
                int j = i % c;
                db[j] += dy[i];
                dg[j] += dy[i] * (x[i] - mean[j]) / Math.Sqrt(vr[j] + eps);
            }
            var dx = new double[x.Length];
            for (int i = 0; i < x.Length; i++)
            {
                int j = i % c;
                double inv = 1 / Math.Sqrt(vr[j] + eps), xhat = (x[i] - mean[j]) * inv;
                dx[i] = gamma[j] * inv * (dy[i] - db[j] / rows - xhat * dg[j] / rows);
            }
            return (dx, dg, db);
        }
    }
}
