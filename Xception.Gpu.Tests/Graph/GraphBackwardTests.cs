using Xception.Gpu.Graph;
using Xception.Gpu.Graph.Layers;
using Xception.Gpu.Ops;
using Xception.Gpu.Tests.Architecture;
using Xunit;

namespace Xception.Gpu.Tests.Graph;

/// <summary>
/// The executor's backward pass through a small graph with every layer kind and a residual fork, checked
/// against central differences of the float64 training-mode forward.
/// </summary>
public class GraphBackwardTests
{
    static Model SmallGraph(bool max)
    {
        var input = new InputLayer("input", [9, 8, 3]);
        var c1 = new Conv2DLayer("c1", input, 4, 3, 1, Padding.Same);
        var bn1 = new BatchNormLayer("bn1", c1);
        var a1 = new ActivationLayer("a1", bn1, ActivationKind.Relu);
        var sc = new Conv2DLayer("sc", a1, 6, 1, 2, Padding.Same);           // the shortcut reads a1 ...
        var scbn = new BatchNormLayer("scbn", sc);
        var s1 = new SeparableConv2DLayer("s1", a1, 6, between: ActivationKind.Elu); // ... and so does the main branch
        var bn2 = new BatchNormLayer("bn2", s1);
        var a2 = new ActivationLayer("a2", bn2, ActivationKind.Relu);
        var s2 = new SeparableConv2DLayer("s2", a2, 6, segments: 2);
        var pool = new MaxPoolLayer("pool", s2);
        var add = new AddLayer("add", pool, scbn);
        var gp = new GlobalPoolLayer("gp", add, max);
        var drop = new DropoutLayer("drop", gp, 0f);
        var dense = new DenseLayer("dense", drop, 3);
        return new Model("small", [input, c1, bn1, a1, sc, scbn, s1, bn2, a2, s2, pool, add, gp, drop, dense]);
    }

    [Theory]
    [InlineData(Backends.Cpu, false)]
    [InlineData(Backends.Cpu, true)]
    [InlineData(Backends.GpuShapedCpu, false)]
    [InlineData(Backends.Cuda, false)]
    [InlineData(Backends.OpenCl, false)]
    [InlineData(Backends.OpenCl, true)]
    public void ParameterGradientsMatchCentralDifferences(string backend, bool globalMax)
    {
        var d = Backends.Get(backend);
        using var m = SmallGraph(globalMax);
        ModelFixtures.Randomize(m, 11);
        m.Bind(d);
        int batch = 3;
        var x = TestData.Uniform(batch * 9 * 8 * 3, 12);
        var r = TestData.Uniform(batch * 3, 13);
        using var tx = Tensor.From(d, x, batch, 9, 8, 3);
        using var tr = Tensor.From(d, r, batch, 3);
        var ex = m.Executor(batch, training: true);
        var y = ex.Forward(tx).ToArray();
        Check.Close("training forward", y, m.ReferenceForward(TestData.D(x), batch, training: true), 1e-5);
        ex.Backward(tr);

        var rd = TestData.D(r);
        var xd = TestData.D(x);
        foreach (var p in m.Parameters.Where(p => p.Trainable))
        {
            var grad = p.Grad!.ToArray();
            var host = p.Host;
            var idx = Enumerable.Range(0, Math.Min(p.Length, 12)).Select(i => i * 7919 % p.Length).Distinct().ToArray();
            var numeric = new double[idx.Length];
            var analytic = new double[idx.Length];
            for (int k = 0; k < idx.Length; k++)
            {
                int i = idx[k];
                float keep = host[i];
                // The weights are float32: step to the nearest float32 values and divide by the true distance.
                float up = keep + 1e-4f, down = keep - 1e-4f;
                host[i] = up; double lp = Check.Dot(rd, m.ReferenceForward(xd, batch, true));
                host[i] = down; double lm = Check.Dot(rd, m.ReferenceForward(xd, batch, true));
                host[i] = keep;
                numeric[k] = (lp - lm) / ((double)up - down);
                analytic[k] = grad[i];
            }
            // Step 1e-4: small enough not to cross a ReLU or max kink here (1e-3 crossed one in the global-max
            // graph), large enough that float32 device arithmetic (~1e-6 relative) stays far below the 2e-3
            // allowed on the sample.
            Check.Close($"{p.Name} of a layer with {p.Length} weights", TestData.F(analytic), numeric, 2e-3);
        }
    }

    [Fact]
    public void InferenceRecyclesMemory()
    {
        var d = Backends.Get(Backends.Cpu);
        using var m = Gpu.Architecture.XceptionBuilder.Build(new Gpu.Architecture.XceptionConfig { ImageSize = 71, Classes = 5 });
        m.Bind(d);
        using var tx = Tensor.Zeros(d, 2, 71, 71, 3);
        var infer = m.Executor(2, false);
        infer.Forward(tx);
        var train = m.Executor(2, true);
        train.Forward(tx);
        Assert.True(infer.Bytes * 4 < train.Bytes, $"inference holds {infer.Bytes} bytes, training {train.Bytes}");
    }
}
