using Xception.Gpu.Graph;
using Xception.Gpu.Inference;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xunit;

namespace Xception.Gpu.Tests.Keras;

/// <summary>Keras weights in, Keras' logits out: the whole network against Keras itself.</summary>
public class KerasEquivalenceTests
{
    [Theory]
    [InlineData(Backends.Cpu, 71)]
    [InlineData(Backends.Cpu, 74)]
    [InlineData(Backends.Cuda, 71)]
    [InlineData(Backends.Cuda, 74)]
    [InlineData(Backends.OpenCl, 71)]
    [InlineData(Backends.OpenCl, 74)]
    public void LogitsMatchKeras(string backend, int size)
    {
        var dir = KerasReference.Folder();
        var d = Backends.Get(backend);
        var input = Npy.Read(Path.Combine(dir, $"input_{size}.npy"));
        var want = Npy.Read(Path.Combine(dir, $"logits_{size}.npy"));
        Assert.Equal(new[] { KerasReference.Batch, size, size, 3 }, input.Shape);
        var config = ModelWeights.ConfigOf(KerasReference.Weights, new XceptionConfig()) with { ImageSize = size };
        Assert.Equal(KerasReference.Classes, config.Classes);
        using var model = XceptionBuilder.Build(config);
        ModelWeights.Load(model, KerasReference.Weights);
        model.Bind(d);
        using var x = Tensor.From(d, input.Data, input.Shape);
        var logits = model.Executor(KerasReference.Batch, false).Forward(x).ToArray();
        // Keras equivalence: ||out - ref|| / ||ref|| <= 1e-4.
        var w = want.Data;
        double num = 0, den = 0;
        for (int i = 0; i < w.Length; i++) { num += (logits[i] - w[i]) * (double)(logits[i] - w[i]); den += w[i] * (double)w[i]; }
        TestContext.Current.SendDiagnosticMessage($"Keras logits at {size}x{size} on {d.Id}: relative error {Math.Sqrt(num / den):E2}");
        Check.Close($"logits at {size}x{size} against Keras", logits, want.Data.Select(v => (double)v).ToArray(), 1e-4);
    }

    [Fact]
    public void H5RoundTripKeepsEveryWeight()
    {
        var src = KerasReference.Weights;
        var config = ModelWeights.ConfigOf(src, new XceptionConfig()) with { ImageSize = 71 };
        using var a = XceptionBuilder.Build(config);
        ModelWeights.Load(a, src);
        var out1 = Path.Combine(Path.GetTempPath(), $"xception-roundtrip-{Environment.ProcessId}.h5");
        var out2 = Path.ChangeExtension(out1, ".safetensors");
        try
        {
            KerasH5.Save(a, out1);
            ModelWeights.Save(a, config, out2);
            foreach (var path in new[] { out1, out2 })
            {
                using var b = XceptionBuilder.Build(ModelWeights.ConfigOf(path, config));
                ModelWeights.Load(b, path);
                var pa = a.Parameters.ToList(); var pb = b.Parameters.ToList();
                Assert.Equal(pa.Count, pb.Count);
                for (int i = 0; i < pa.Count; i++) Assert.Equal(pa[i].Host, pb[i].Host);
            }
        }
        finally
        {
            File.Delete(out1); File.Delete(out2);
        }
    }
}
