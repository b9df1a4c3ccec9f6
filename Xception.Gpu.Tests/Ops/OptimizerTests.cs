using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

public class OptimizerTests
{
    // Three steps with changing gradients, so momentum and mean-square state are exercised.
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void SgdAndRmsPropMatchReference(string backend)
    {
        var d = Backends.Get(backend);
        int n = 1031;
        var w0 = TestData.Uniform(n, 81);
        foreach (var (momentum, nesterov, wd) in new[] { (0f, false, 0f), (0.9f, false, 1e-5f), (0.9f, true, 1e-3f) })
        {
            using var w = Tensor.From(d, w0, n); using var v = Tensor.Zeros(d, n); using var g = Tensor.Zeros(d, n);
            var rw = TestData.D(w0); var rv = new double[n];
            for (int step = 0; step < 3; step++)
            {
                var grad = TestData.Uniform(n, 82 + step);
                g.CopyFrom(grad);
                Optimizer.On(d).Sgd(w, g, v, 0.045f, momentum, nesterov, wd);
                Optimizer.Reference.Sgd(rw, TestData.D(grad), rv, 0.045f, momentum, nesterov, wd);
            }
            Check.Close($"sgd momentum {momentum} nesterov {nesterov} wd {wd}", w.ToArray(), rw, 1e-6);
            Check.Close("sgd velocity", v.ToArray(), rv, 1e-6);
        }
        foreach (var momentum in new[] { 0f, 0.9f })
        {
            using var w = Tensor.From(d, w0, n); using var ms = Tensor.Zeros(d, n); using var mom = Tensor.Zeros(d, n);
            using var g = Tensor.Zeros(d, n);
            var rw = TestData.D(w0); var rms = new double[n]; var rmom = new double[n];
            for (int step = 0; step < 3; step++)
            {
                var grad = TestData.Uniform(n, 92 + step);
                g.CopyFrom(grad);
                Optimizer.On(d).RmsProp(w, g, ms, mom, 0.001f, 0.9f, momentum, 1e-7f, 1e-5f);
                Optimizer.Reference.RmsProp(rw, TestData.D(grad), rms, rmom, 0.001f, 0.9f, momentum, 1e-7f, 1e-5f);
            }
            Check.Close($"rmsprop momentum {momentum}", w.ToArray(), rw, 1e-6);
            Check.Close("rmsprop mean square", ms.ToArray(), rms, 1e-6);
        }
    }

    [Fact]
    public void WeightDecayIsTheGradientOfHalfL2()
    {
        // With a zero loss gradient, one SGD step must move w by -lr * wd * w: the gradient of wd/2 ||w||^2.
        var w = TestData.D(TestData.Uniform(17, 99));
        var v = new double[17];
        var before = (double[])w.Clone();
        Optimizer.Reference.Sgd(w, new double[17], v, 0.1, 0, false, 0.01);
        Check.Gradient("l2 decay", u => 0.01 / 2 * u.Sum(t => t * t), before, before.Select((t, i) => (t - w[i]) / 0.1).ToArray());
    }
}
