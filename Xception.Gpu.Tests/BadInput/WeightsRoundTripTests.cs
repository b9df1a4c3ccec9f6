using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.BadInput;

/// <summary>
/// What this project saves, it reads back: the configuration (the small model's too, from an .h5) and every
/// parameter bit for bit, in both formats; and through the CLI, train --save x.h5 then predict, eval and
/// train --weights on it.
/// </summary>
public sealed class WeightsRoundTripTests
{
    public static TheoryData<string, string> Cases => new()
    {
        { "full", ".h5" }, { "full", ".safetensors" }, { "mini", ".h5" }, { "mini", ".safetensors" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void SavedWeightsComeBackWithTheirConfiguration(string which, string ext)
    {
        var config = which == "full" ? new XceptionConfig { ImageSize = 71, Classes = 5 } : XceptionConfig.Mini(32, 3, 10);
        using var tmp = new TempDir();
        var path = tmp["w" + ext];
        using var saved = XceptionBuilder.Build(config);
        saved.Initialize(11);
        ModelWeights.Save(saved, config, path);

        // A fallback unlike either configuration: what comes back must come from the file.
        var read = ModelWeights.ConfigOf(path, new XceptionConfig { Classes = 77, ImageSize = 299 });
        Assert.Equal(config, read);
        using var loaded = XceptionBuilder.Build(read);
        ModelWeights.Load(loaded, path);
        var a = saved.Parameters.ToList();
        var b = loaded.Parameters.ToList();
        Assert.Equal(a.Count, b.Count);
        for (int i = 0; i < a.Count; i++)
            Assert.True(a[i].Host.AsSpan().SequenceEqual(b[i].Host), $"parameter {i} ({a[i].Name}) differs after the round trip");
    }

    [Fact]
    public void KerasFilesWithoutAStoredConfigurationKeepTheFallback()
    {
        using var tmp = new TempDir();
        var path = tmp["keras.h5"];
        var config = XceptionConfig.Mini(32, 3, 10);
        using (var m = XceptionBuilder.Build(config)) KerasH5.Save(m, path); // as Keras writes: no configuration
        var fallback = new XceptionConfig { Classes = 3 };
        Assert.Equal(fallback with { Classes = 10 }, ModelWeights.ConfigOf(path, fallback));
    }

    [Fact]
    public void TheSmallModelsH5IsUsableByPredictEvalAndTrain()
    {
        using var tmp = new TempDir();
        var dir = tmp["run"];
        var h5 = Path.Combine(dir, "x.h5");
        var (code, output) = CliRun.Run("train", "--model", "xception-mini", "--data", "synthetic:40", "--steps", "1", "--batch", "8",
            "--device", "cpu", "--checkpoint-dir", dir, "--save", h5);
        Assert.True(code == 0, output);

        var x = tmp["x.npy"];
        Npy.Write(x, new float[2 * 32 * 32 * 3].Select((_, i) => (i % 255) / 127.5f - 1).ToArray(), [2, 32, 32, 3]);
        (code, output) = CliRun.Run("predict", "--weights", h5, "--input", x, "--output", tmp["y.npy"], "--device", "cpu");
        Assert.True(code == 0, output);
        Assert.Equal(new[] { 2, 10 }, Npy.Read(tmp["y.npy"]).Shape);

        (code, output) = CliRun.Run("eval", "--weights", h5, "--data", "synthetic:40", "--split", "all", "--device", "cpu");
        Assert.True(code == 0, output);

        (code, output) = CliRun.Run("train", "--weights", h5, "--data", "synthetic:40", "--steps", "1", "--batch", "8",
            "--device", "cpu", "--checkpoint-dir", tmp["again"]);
        Assert.True(code == 0, output);
    }
}
