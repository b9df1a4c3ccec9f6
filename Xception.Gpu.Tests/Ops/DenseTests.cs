using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>Dense (fully connected with bias): forward and the three gradients.</summary>
public class DenseTests
{
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void DenseMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        foreach (var (n, c, o) in new[] { (3, 37, 11), (5, 130, 7), (2, 9, 67) })
        {
            var x = TestData.Uniform(n * c, 61); var w = TestData.Uniform(c * o, 62); var b = TestData.Uniform(o, 63);
            using var tx = Tensor.From(d, x, n, c); using var tw = Tensor.From(d, w, c, o); using var tb = Tensor.From(d, b, o);
            using var ty = Tensor.Zeros(d, n, o);
            var op = Dense.On(d);
            op.Forward(tx, tw, tb, ty);
            Check.Close($"dense forward {n}x{c}->{o}", ty.ToArray(), Dense.Reference.Forward(TestData.D(x), TestData.D(w), TestData.D(b), n, c, o), Check.ForSum(c + 1));
            var dy = TestData.Uniform(n * o, 64);
            using var tdy = Tensor.From(d, dy, n, o);
            using var tdx = Tensor.Zeros(d, n, c); using var tdw = Tensor.Zeros(d, c, o); using var tdb = Tensor.Zeros(d, o);
            op.Backward(tdy, tx, tw, tdx, tdw, tdb);
            var (rdx, rdw, rdb) = Dense.Reference.Backward(TestData.D(x), TestData.D(w), TestData.D(dy), n, c, o);
            Check.Close("dense dx", tdx.ToArray(), rdx, Check.ForSum(o));
            Check.Close("dense dw", tdw.ToArray(), rdw, Check.ForSum(n));
            Check.Close("dense db", tdb.ToArray(), rdb, Check.ForSum(n));
        }
    }

    [Fact]
    public void ReferenceGradientsMatchCentralDifferences()
    {
        int n = 3, c = 5, o = 4;
        var x = TestData.D(TestData.Uniform(n * c, 68)); var w = TestData.D(TestData.Uniform(c * o, 69)); var b = TestData.D(TestData.Uniform(o, 70));
        var r = TestData.D(TestData.Uniform(n * o, 71));
        var (dx, dw, db) = Dense.Reference.Backward(x, w, r, n, c, o);
        Check.Gradient("dense dx", v => Check.Dot(r, Dense.Reference.Forward(v, w, b, n, c, o)), x, dx);
        Check.Gradient("dense dw", v => Check.Dot(r, Dense.Reference.Forward(x, v, b, n, c, o)), w, dw);
        Check.Gradient("dense db", v => Check.Dot(r, Dense.Reference.Forward(x, w, v, n, c, o)), b, db);
    }
}
