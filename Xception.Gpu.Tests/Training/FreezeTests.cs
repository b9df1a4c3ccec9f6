using Xception.Gpu.Graph;
using Xception.Gpu.Architecture;
using Xception.Gpu.Tests.Architecture;
using Xception.Gpu.Training;
using Xunit;

namespace Xception.Gpu.Tests.Training;

/// <summary>
/// Keras' <c>trainable = False</c>: frozen layers take no gradient and no update, frozen batch norm runs in
/// inference mode, and the backward pass stops below the lowest trainable layer.
/// </summary>
public class FreezeTests
{
    const int Batch = 4, Classes = 10;

    static Model Mini(int seed)
    {
        var m = XceptionBuilder.Build(XceptionConfig.Mini(32, 3, Classes));
        ModelFixtures.Randomize(m, seed);
        m.Bind(Backends.Get(Backends.Cpu));
        return m;
    }

    static TrainBatch RandomBatch(int seed)
    {
        var r = new Random(seed);
        var x = Enumerable.Range(0, Batch * 32 * 32 * 3).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
        return new TrainBatch(x, Batch, Enumerable.Range(0, Batch).Select(i => i * 3 % Classes).ToArray(), null);
    }

    static Dictionary<string, float[]> Snapshot(Model m)
    {
        m.SyncToHost();
        return m.Layers.SelectMany(l => l.Parameters.Select(p => ($"{l.Name}/{p.Name}", (float[])p.Host.Clone()))).ToDictionary(t => t.Item1, t => t.Item2);
    }

    [Fact]
    public void AFrozenBaseStepChangesOnlyTheClassifier()
    {
        using var m = Mini(3);
        m.FreezeBase();
        Assert.Equal("predictions", m.Classifier.Name);
        Assert.Equal(m.Layers.Count - 2, m.FrozenLayers.Count); // all but the input and the classifier
        Assert.Equal(m.Classifier.Parameters.Sum(p => (long)p.Length), m.TrainableParams);
        var before = Snapshot(m);
        using (var one = new SingleReplica(m, new OptimizerSettings { Kind = OptimizerKind.Sgd, Momentum = 0.9f }))
        {
            var r = one.Step(RandomBatch(5), 0.1f, 0);
            Assert.True(r.Applied);
            // Below the classifier nothing was differentiated: the gradient buffers are still the zeros of Bind.
            foreach (var p in m.Parameters.Where(p => p.Optimizable && p.Owner != m.Classifier))
                Assert.All(p.Grad!.ToArray(), g => Assert.Equal(0f, g));
        }
        var after = Snapshot(m);
        foreach (var (name, values) in before)
        {
            if (name.StartsWith("predictions/")) Assert.NotEqual(values, after[name]);
            else Assert.True(values.AsSpan().SequenceEqual(after[name]), $"{name} changed although frozen");
        }
    }

    [Fact]
    public void WithEveryBatchNormFrozenATrainingForwardIsTheInferenceForward()
    {
        using var m = Mini(7);
        var batch = RandomBatch(8);
        using var x = Tensor.From(m.Device!, batch.X, Batch, 32, 32, 3);
        var inference = m.Executor(Batch, training: false).Forward(x).ToArray();
        foreach (var l in m.Layers.Where(l => l.KerasType == "BatchNormalization")) l.Trainable = false;
        var stats = Snapshot(m).Where(kv => kv.Key.Contains("moving_")).ToList();
        var training = m.Executor(Batch, training: true).Forward(x).ToArray();
        // The same kernels on the same values: equal to the bit, not merely within float32 rounding.
        Assert.Equal(inference, training);
        var after = Snapshot(m);
        foreach (var (name, values) in stats) Assert.True(values.AsSpan().SequenceEqual(after[name]), $"{name} moved in inference mode");

        // The model-wide mode does the same with nothing frozen.
        foreach (var l in m.Layers) l.Trainable = true;
        m.BatchNormMode = BatchNormMode.Inference;
        Assert.Equal(inference, m.Executor(Batch, training: true).Forward(x).ToArray());
    }

    [Fact]
    public void TheClassifiersGradientWithAFrozenBaseIsTheFullPasssAndCentralDifferences()
    {
        var batch = RandomBatch(12);
        var r = new Random(13);
        var dy = Enumerable.Range(0, Batch * Classes).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();

        float[] HeadKernelGrad(Model m)
        {
            using var x = Tensor.From(m.Device!, batch.X, Batch, 32, 32, 3);
            using var g = Tensor.From(m.Device!, dy, Batch, Classes);
            var ex = m.Executor(Batch, training: true);
            ex.Forward(x);
            ex.Backward(g);
            return m["predictions"].Parameters.First(p => p.Name == "kernel").Grad!.ToArray();
        }

        // The same computation with everything trainable and batch norm in inference mode (the base's gradients
        // computed too) gives the classifier the same gradient, to the bit.
        using var full = Mini(11);
        full.BatchNormMode = BatchNormMode.Inference;
        var expected = HeadKernelGrad(full);
        using var frozen = Mini(11);
        frozen.FreezeBase();
        var got = HeadKernelGrad(frozen);
        Assert.Equal(expected, got);

        // Central differences of the float64 reference forward (inference mode: the frozen base's batch norm).
        var kernel = frozen["predictions"].Parameters.First(p => p.Name == "kernel");
        frozen.SyncToHost();
        var xd = batch.X.Select(v => (double)v).ToArray();
        var rd = dy.Select(v => (double)v).ToArray();
        var host = kernel.Host;
        foreach (int i in new[] { 0, 17, 101, kernel.Length - 1 })
        {
            float keep = host[i], up = keep + 1e-3f, down = keep - 1e-3f;
            host[i] = up; double lp = Check.Dot(rd, frozen.ReferenceForward(xd, Batch));
            host[i] = down; double lm = Check.Dot(rd, frozen.ReferenceForward(xd, Batch));
            host[i] = keep;
            double numeric = (lp - lm) / ((double)up - down);
            Assert.True(Math.Abs(numeric - got[i]) <= 1e-4 * Math.Max(1, Math.Abs(numeric)), $"kernel[{i}]: analytic {got[i]}, central difference {numeric}");
        }
    }

    /// <summary>
    /// One optimizer across a freeze and an unfreeze (its update group rebuilt each time): while frozen, a layer's
    /// weights and velocity stay exactly as they were; unfrozen again, it is updated again.
    /// </summary>
    [Fact]
    public void FreezingAndUnfreezingBetweenStepsOfOneOptimizer()
    {
        using var m = Mini(21);
        using var one = new SingleReplica(m, new OptimizerSettings { Kind = OptimizerKind.Sgd, Momentum = 0.9f });
        Dictionary<string, float[]> Velocity() => one.Optimizer.Export().ToDictionary(t => t.Name, t => t.Data);
        const string Layer = "block2_sepconv1", Kernel = Layer + "/pointwise_kernel";
        Assert.True(one.Step(RandomBatch(22), 0.1f, 0).Applied);
        var (weights, velocity) = (Snapshot(m), Velocity());
        m[Layer].Trainable = false;
        Assert.True(one.Step(RandomBatch(23), 0.1f, 1).Applied);
        var (frozenWeights, frozenVelocity) = (Snapshot(m), Velocity());
        Assert.Equal(weights[Kernel], frozenWeights[Kernel]);
        Assert.Equal(velocity[$"optimizer/{Kernel}/velocity"], frozenVelocity[$"optimizer/{Kernel}/velocity"]);
        Assert.NotEqual(weights["predictions/kernel"], frozenWeights["predictions/kernel"]);
        m[Layer].Trainable = true;
        Assert.True(one.Step(RandomBatch(24), 0.1f, 2).Applied);
        Assert.NotEqual(frozenWeights[Kernel], Snapshot(m)[Kernel]);
        Assert.NotEqual(frozenVelocity[$"optimizer/{Kernel}/velocity"], Velocity()[$"optimizer/{Kernel}/velocity"]);
    }

    [Fact]
    public void FreezeUpToALayerAndUnknownNames()
    {
        using var m = XceptionBuilder.Build(XceptionConfig.Mini(32, 3, Classes));
        m.Freeze(upTo: "block1_conv2_bn");
        Assert.Equal(["block1_conv1", "block1_conv1_bn", "block1_conv1_act", "block1_conv2", "block1_conv2_bn"], m.FrozenLayers);
        var e = Assert.Throws<Gpu.Graph.LayerNotFoundException>(() => m.Freeze(upTo: "block99"));
        Assert.StartsWith($"{m.Name} has no layer 'block99'; expected a layer name such as block1_conv1, ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(5, m.FrozenLayers.Count); // a refused name changes nothing
        m.Unfreeze();
        Assert.Empty(m.FrozenLayers);
    }
}
