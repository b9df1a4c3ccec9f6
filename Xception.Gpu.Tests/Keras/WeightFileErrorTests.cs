using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xunit;

namespace Xception.Gpu.Tests.Keras;

/// <summary>Every wrong weight file gets one line that names the layer and the expected and found shapes.</summary>
public class WeightFileErrorTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("xception-weights-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static void OneLine(Exception e) => Assert.DoesNotContain('\n', e.Message);

    [Fact]
    public void WrongClassCountNamesTheLayerAndBothShapes()
    {
        var path = Path.Combine(dir, "c5.h5");
        using (var m5 = XceptionBuilder.Build(new XceptionConfig { Classes = 5 })) KerasH5.Save(m5, path);
        using var m10 = XceptionBuilder.Build(new XceptionConfig { Classes = 10 });
        var e = Assert.Throws<WeightsException>(() => ModelWeights.Load(m10, path));
        Assert.Equal($"predictions/kernel: expected shape (2048, 10), found (2048, 5) in '{path}'", e.Message);
    }

    [Fact]
    public void MissingLayersAndFilesOfOtherModelsAreNamed()
    {
        var seven = Path.Combine(dir, "m7.h5");
        using (var m7 = XceptionBuilder.Build(new XceptionConfig { MiddleBlocks = 7, Classes = 3 })) KerasH5.Save(m7, seven);
        using var m8 = XceptionBuilder.Build(new XceptionConfig { Classes = 3 });
        var e = Assert.Throws<WeightsException>(() => ModelWeights.Load(m8, seven));
        Assert.Equal($"'{seven}' has no layer 'block12_sepconv3' (SeparableConv2D); is it a weight file of another model?", e.Message);

        var notop = Path.Combine(dir, "notop.h5");
        using (var n = XceptionBuilder.Build(new XceptionConfig { IncludeTop = false })) KerasH5.Save(n, notop);
        e = Assert.Throws<WeightsException>(() => ModelWeights.Load(m8, notop));
        Assert.Contains("has no layer 'predictions': a weights file without the classifier (_notop) needs a model built without it", e.Message);

        var plain = Path.Combine(dir, "plain.h5");
        using (var p = XceptionBuilder.Build(new XceptionConfig { Residual = false, Classes = 3 })) KerasH5.Save(p, plain);
        e = Assert.Throws<WeightsException>(() => ModelWeights.Load(m8, plain));
        Assert.Equal($"'{plain}' has 0 automatically named conv2d layers (); the model has 4 (the shortcuts)", e.Message);
        OneLine(e);
    }

    [Fact]
    public void NotHdf5TruncatedOrMissingFiles()
    {
        using var m = XceptionBuilder.Build(new XceptionConfig { Classes = 3 });
        var text = Path.Combine(dir, "weights.h5");
        File.WriteAllText(text, "these are not weights\n");
        var e = Assert.Throws<WeightsException>(() => ModelWeights.Load(m, text));
        Assert.Equal($"'{text}' is neither Keras HDF5 weights (no HDF5 signature) nor an Xception.Gpu checkpoint (no safetensors header); expected a .h5 file or a .safetensors checkpoint", e.Message);
        OneLine(e);

        var good = Path.Combine(dir, "good.h5");
        KerasH5.Save(m, good);
        var cut = Path.Combine(dir, "cut.h5");
        var bytes = File.ReadAllBytes(good);
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        e = Assert.Throws<WeightsException>(() => ModelWeights.Load(m, cut));
        Assert.Contains($"'{cut}'", e.Message);
        OneLine(e);

        e = Assert.Throws<WeightsException>(() => ModelWeights.Load(m, Path.Combine(dir, "nope.h5")));
        Assert.Equal($"weights file '{Path.Combine(dir, "nope.h5")}' does not exist", e.Message);
    }

    [Fact]
    public void ANonKerasHdf5FileSaysSo()
    {
        var other = Path.Combine(dir, "other.h5");
        var f = new PureHDF.H5File { ["data"] = new PureHDF.H5Dataset(new float[] { 1, 2, 3 }, fileDims: [3]) };
        f.Write(other);
        using var m = XceptionBuilder.Build(new XceptionConfig { Classes = 3 });
        var e = Assert.Throws<WeightsException>(() => ModelWeights.Load(m, other));
        Assert.Equal($"'{other}' has no 'layer_names' attribute: not a Keras 2 weight file (expected the HDF5 file that Keras' save_weights writes)", e.Message);
    }

    [Fact]
    public void AFailedLoadChangesNoWeight()
    {
        var path = Path.Combine(dir, "c5.h5");
        using (var m5 = XceptionBuilder.Build(new XceptionConfig { Classes = 5 }))
        {
            m5.Initialize(1);
            KerasH5.Save(m5, path);
        }
        using var m = XceptionBuilder.Build(new XceptionConfig { Classes = 10 });
        m.Initialize(2);
        var before = m.Parameters.First().Host.ToArray();
        Assert.Throws<WeightsException>(() => ModelWeights.Load(m, path));
        Assert.Equal(before, m.Parameters.First().Host);
    }
}
