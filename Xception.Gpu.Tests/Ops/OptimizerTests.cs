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

    // Lengths around the SIMD widths (4, 8, 16) and the 64-float blocks the CPU variant cuts bands at, a tensor
    // smaller than a vector, and enough in all that every core's band starts and ends inside some tensor.
    static readonly int[] GroupLengths = [1, 7, 63, 64, 65, 1000, 4099, 5];

    /// <summary>
    /// A group updates every tensor as the per-tensor kernel does, to the bit (the CPU variant computes the same
    /// operations in the same order, without fused multiply-adds), and as the float64 reference within 1e-6 (three
    /// steps of a few float32 operations per element, values of order 1).
    /// </summary>
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void AGroupUpdatesEveryTensorAsThePerTensorKernel(string backend)
    {
        var d = Backends.Get(backend);
        var op = Optimizer.On(d);
        foreach (var (kind, momentum, nesterov) in new[] { ("sgd", 0f, false), ("sgd", 0.9f, false), ("sgd", 0.9f, true), ("rmsprop", 0f, false), ("rmsprop", 0.9f, false) })
        {
            string what = $"{kind} momentum {momentum} nesterov {nesterov}";
            var tensors = new List<Tensor<float>>();
            Tensor<float> T(float[] v) { var t = Tensor.From(d, v, v.Length); tensors.Add(t); return t; }
            var w0 = GroupLengths.Select((n, i) => TestData.Uniform(n, 200 + i)).ToArray();
            float[] wd = GroupLengths.Select((_, i) => i % 2 == 0 ? 1e-3f : 0f).ToArray();
            // The group's tensors, the per-tensor kernel's copies of the same, and the float64 reference.
            var gw = w0.Select(T).ToArray(); var ga = w0.Select(v => T(new float[v.Length])).ToArray(); var gb = w0.Select(v => T(new float[v.Length])).ToArray();
            var pw = w0.Select(T).ToArray(); var pa = w0.Select(v => T(new float[v.Length])).ToArray(); var pb = w0.Select(v => T(new float[v.Length])).ToArray();
            var grads = w0.Select(v => T(new float[v.Length])).ToArray();
            var rw = w0.Select(TestData.D).ToArray(); var ra = w0.Select(v => new double[v.Length]).ToArray(); var rb = w0.Select(v => new double[v.Length]).ToArray();
            using var group = new OptimizerGroup(d, GroupLengths.Select((_, i) =>
                new OptimizerSlot(gw[i], grads[i], ga[i], kind == "sgd" ? null : gb[i], wd[i])).ToList());
            for (int step = 0; step < 3; step++)
            {
                for (int i = 0; i < GroupLengths.Length; i++) grads[i].CopyFrom(TestData.Uniform(GroupLengths[i], 300 + 10 * step + i));
                if (kind == "sgd") group.Sgd(0.045f, momentum, nesterov);
                else group.RmsProp(0.001f, 0.9f, momentum, 1e-7f);
                for (int i = 0; i < GroupLengths.Length; i++)
                {
                    var g = TestData.D(grads[i].ToArray());
                    if (kind == "sgd")
                    {
                        op.Sgd(pw[i], grads[i], pa[i], 0.045f, momentum, nesterov, wd[i]);
                        Optimizer.Reference.Sgd(rw[i], g, ra[i], 0.045f, momentum, nesterov, wd[i]);
                    }
                    else
                    {
                        op.RmsProp(pw[i], grads[i], pa[i], pb[i], 0.001f, 0.9f, momentum, 1e-7f, wd[i]);
                        Optimizer.Reference.RmsProp(rw[i], g, ra[i], rb[i], 0.001f, 0.9f, momentum, 1e-7f, wd[i]);
                    }
                }
            }
            for (int i = 0; i < GroupLengths.Length; i++)
            {
                Assert.True(pw[i].ToArray().AsSpan().SequenceEqual(gw[i].ToArray()), $"{what}: tensor {i} ({GroupLengths[i]} values) differs from the per-tensor kernel");
                Assert.True(pa[i].ToArray().AsSpan().SequenceEqual(ga[i].ToArray()), $"{what}: slot of tensor {i} differs from the per-tensor kernel");
                if (kind == "rmsprop") Assert.True(pb[i].ToArray().AsSpan().SequenceEqual(gb[i].ToArray()), $"{what}: momentum of tensor {i} differs");
                Check.Close($"{what} tensor {i}", gw[i].ToArray(), rw[i], 1e-6);
                Check.Close($"{what} slot {i}", ga[i].ToArray(), ra[i], 1e-6);
            }
            foreach (var t in tensors) t.Dispose();
        }
    }

    [Fact]
    public void RmsPropInAGroupWithoutItsSecondSlotIsRefused()
    {
        var d = Backends.Get(Backends.Cpu);
        using var w = Tensor.Zeros(d, 3); using var g = Tensor.Zeros(d, 3); using var a = Tensor.Zeros(d, 3);
        using var group = new OptimizerGroup(d, [new OptimizerSlot(w, g, a, null, 0f)]);
        var e = Assert.Throws<InvalidOperationException>(() => group.RmsProp(0.001f, 0.9f, 0f, 1e-7f));
        Assert.Contains("two slot tensors", e.Message);
        using var wrong = Tensor.Zeros(d, 4);
        Assert.Throws<ShapeException>(() => new OptimizerGroup(d, [new OptimizerSlot(w, g, wrong, null, 0f)]));
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
