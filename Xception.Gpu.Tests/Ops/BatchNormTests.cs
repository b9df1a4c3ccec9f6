using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

public class BatchNormTests
{
    const double Eps = 1e-3;

    static BatchNormParams Params(Device d, int c, out float[] gamma, out float[] beta, out float[] mm, out float[] mv)
    {
        gamma = TestData.Uniform(c, 31, 0.5f, 1.5f); beta = TestData.Uniform(c, 32);
        mm = TestData.Uniform(c, 33); mv = TestData.Uniform(c, 34, 0.5f, 2f);
        return new(Tensor.From(d, gamma, c), Tensor.From(d, beta, c), Tensor.From(d, mm, c), Tensor.From(d, mv, c));
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void TrainingForwardBackwardAndMovingStatisticsMatchReference(string backend)
    {
        var d = Backends.Get(backend);
        foreach (var (n, h, w, c) in new[] { (2, 13, 11, 5), (3, 7, 5, 19), (4, 1, 1, 3) })
        {
            int rows = n * h * w;
            // An offset mean (3) checks that the variance does not suffer from cancellation.
            var x = TestData.Uniform(rows * c, 35, 2f, 4f);
            var p = Params(d, c, out var gamma, out var beta, out var mm, out var mv);
            using var tx = Tensor.From(d, x, n, h, w, c);
            using var ty = Tensor.Zeros(d, n, h, w, c);
            using var mean = Tensor.Zeros(d, c); using var invstd = Tensor.Zeros(d, c);
            var op = BatchNorm.On(d);
            op.ForwardTraining(tx, p, ty, mean, invstd);
            var (ry, rmean, rvar) = BatchNorm.Reference.ForwardTraining(TestData.D(x), TestData.D(gamma), TestData.D(beta), rows, c, Eps);
            string name = $"{n}x{h}x{w}x{c}";
            Check.Close($"batchnorm training forward {name}", ty.ToArray(), ry, Check.ForSum(rows));
            // Keras: moving = 0.99 * moving + 0.01 * batch, with the biased batch variance.
            var wantMm = mm.Select((v, j) => 0.99 * v + 0.01 * rmean[j]).ToArray();
            var wantMv = mv.Select((v, j) => 0.99 * v + 0.01 * rvar[j]).ToArray();
            Check.Close($"batchnorm moving mean {name}", p.MovingMean.ToArray(), wantMm, Check.ForSum(rows));
            Check.Close($"batchnorm moving variance {name}", p.MovingVar.ToArray(), wantMv, Check.ForSum(rows));
            // With momentum 0 the moving statistics are the batch's own: the biased variance, exactly
            // (an unbiased one would be off by rows / (rows - 1), far above the tolerance).
            op.ForwardTraining(tx, p, ty, mean, invstd, momentum: 0f);
            Check.Close($"batchnorm batch mean {name}", p.MovingMean.ToArray(), rmean, Check.ForSum(rows));
            Check.Close($"batchnorm biased batch variance {name}", p.MovingVar.ToArray(), rvar, Check.ForSum(rows));

            var dy = TestData.Uniform(rows * c, 36);
            using var tdy = Tensor.From(d, dy, n, h, w, c);
            using var tdx = Tensor.Zeros(d, n, h, w, c); using var dg = Tensor.Zeros(d, c); using var db = Tensor.Zeros(d, c);
            op.BackwardTraining(tdy, tx, p.Gamma, mean, invstd, tdx, dg, db);
            var (rdx, rdg, rdb) = BatchNorm.Reference.BackwardTraining(TestData.D(x), TestData.D(gamma), TestData.D(dy), rows, c, Eps);
            Check.Close($"batchnorm dbeta {name}", db.ToArray(), rdb, Check.ForSum(rows));
            Check.Close($"batchnorm dgamma {name}", dg.ToArray(), rdg, Check.ForSum(rows));
            // dx subtracts two means from dy: cancellation costs about one more factor of the sum's error.
            Check.Close($"batchnorm dx {name}", tdx.ToArray(), rdx, 4 * Check.ForSum(rows));
            Dispose(p);
        }
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void InferenceUsesMovingStatistics(string backend)
    {
        var d = Backends.Get(backend);
        int n = 2, h = 13, w = 11, c = 5, rows = n * h * w;
        var x = TestData.Uniform(rows * c, 37);
        var p = Params(d, c, out var gamma, out var beta, out var mm, out var mv);
        using var tx = Tensor.From(d, x, n, h, w, c);
        using var ty = Tensor.Zeros(d, n, h, w, c);
        var op = BatchNorm.On(d);
        op.ForwardInference(tx, p, ty);
        Check.Close("batchnorm inference forward", ty.ToArray(),
            BatchNorm.Reference.ForwardInference(TestData.D(x), TestData.D(gamma), TestData.D(beta), TestData.D(mm), TestData.D(mv), c, Eps), Check.ForSum(1));
        Check.Close("inference leaves moving mean", p.MovingMean.ToArray(), TestData.D(mm), 0);

        var dy = TestData.Uniform(rows * c, 38);
        using var tdy = Tensor.From(d, dy, n, h, w, c);
        using var tdx = Tensor.Zeros(d, n, h, w, c); using var dg = Tensor.Zeros(d, c); using var db = Tensor.Zeros(d, c);
        op.BackwardInference(tdy, tx, p, tdx, dg, db);
        var rdx = new double[x.Length]; var rdg = new double[c]; var rdb = new double[c];
        for (int i = 0; i < x.Length; i++)
        {
            int j = i % c; double inv = 1 / Math.Sqrt(mv[j] + Eps);
            rdx[i] = dy[i] * gamma[j] * inv; rdb[j] += dy[i]; rdg[j] += dy[i] * (x[i] - mm[j]) * inv;
        }
        Check.Close("frozen batchnorm dx", tdx.ToArray(), rdx, Check.ForSum(1));
        Check.Close("frozen batchnorm dgamma", dg.ToArray(), rdg, Check.ForSum(rows));
        Check.Close("frozen batchnorm dbeta", db.ToArray(), rdb, Check.ForSum(rows));
        Dispose(p);
    }

    [Fact]
    public void ReferenceGradientsMatchCentralDifferences()
    {
        int rows = 2 * 5 * 3, c = 4;
        var x = TestData.D(TestData.Uniform(rows * c, 39));
        var gamma = TestData.D(TestData.Uniform(c, 40, 0.5f, 1.5f)); var beta = TestData.D(TestData.Uniform(c, 41));
        var r = TestData.D(TestData.Uniform(rows * c, 42));
        var (dx, dg, db) = BatchNorm.Reference.BackwardTraining(x, gamma, r, rows, c, Eps);
        Check.Gradient("batchnorm dx", v => Check.Dot(r, BatchNorm.Reference.ForwardTraining(v, gamma, beta, rows, c, Eps).Y), x, dx);
        Check.Gradient("batchnorm dgamma", v => Check.Dot(r, BatchNorm.Reference.ForwardTraining(x, v, beta, rows, c, Eps).Y), gamma, dg);
        Check.Gradient("batchnorm dbeta", v => Check.Dot(r, BatchNorm.Reference.ForwardTraining(x, gamma, v, rows, c, Eps).Y), beta, db);
    }

    [Fact]
    public void WrongParameterShapeIsNamed()
    {
        var d = Backends.Get(Backends.Cpu);
        var p = Params(d, 4, out _, out _, out _, out _);
        using var x = Tensor.Zeros(d, 1, 3, 3, 5);
        using var y = Tensor.Zeros(d, 1, 3, 3, 5);
        var e = Assert.Throws<ShapeException>(() => BatchNorm.On(d).ForwardInference(x, p, y));
        Assert.Equal("batchnorm: gamma must have shape (5), got (4)", e.Message);
        Dispose(p);
    }

    static void Dispose(BatchNormParams p)
    {
        p.Gamma.Dispose(); p.Beta.Dispose(); p.MovingMean.Dispose(); p.MovingVar.Dispose();
    }
}
