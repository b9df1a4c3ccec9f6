using Xception.Gpu.Inference;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Keras;

/// <summary>
/// Image embeddings against Keras: tools/keras-ref/features.mjs writes the global average and maximum of
/// block14_sepconv2_act that Keras' Xception(include_top=False, pooling=...) computes with generate.mjs's
/// seeded weights, and those weights without the classifier (a _notop file).
/// </summary>
public class KerasFeaturesTests
{
    const int Size = 71;

    static readonly Lazy<(string? Dir, string Reason)> data = new(() =>
        KerasReference.RunCached("features.mjs", "xception-keras-features", "manifest.json", dir =>
            [dir, "--size", $"{Size}", "--batch", $"{KerasReference.Batch}", "--seed", "1", "--classes", $"{KerasReference.Classes}"]));

    /// <summary>The folder with xception_notop.h5, input_71.npy and features_{avg,max}_71.npy; skips when unavailable.</summary>
    internal static string Folder()
    {
        var (dir, reason) = data.Value;
        if (dir is not null) return dir;
        if (Environment.GetEnvironmentVariable("XCEPTION_REQUIRE_KERAS_REF") == "1")
            Assert.Fail($"XCEPTION_REQUIRE_KERAS_REF=1 but the Keras features reference could not be made: {reason}");
        Assert.Skip($"Keras features reference unavailable: {reason}");
        return null!;
    }

    static NpyArray Read(string name) => Npy.Read(Path.Combine(Folder(), name));

    static void AgreesWithKeras(string what, XceptionModel model, GlobalPooling pooling)
    {
        var x = Read($"input_{Size}.npy");
        var want = Read($"features_{pooling.ToString().ToLowerInvariant()}_{Size}.npy");
        Assert.Equal([KerasReference.Batch, 2048], want.Shape);
        Assert.Equal(2048, model.FeatureSize);
        var got = model.Features(x.Data, x.Shape[0], batch: 2);
        Check.Close(what, got, want.Data.Select(v => (double)v).ToArray(), 1e-4);
    }

    [Theory]
    [InlineData(GlobalPooling.Avg)]
    [InlineData(GlobalPooling.Max)]
    public void FeaturesFromANoTopFileEqualKeras(GlobalPooling pooling)
    {
        using var model = XceptionModel.LoadFeatures(Path.Combine(Folder(), "xception_notop.h5"), "cpu", Size, pooling);
        Assert.False(model.Config.IncludeTop);
        Assert.Null(model.Labels);
        AgreesWithKeras($"{pooling} features from the _notop file", model, pooling);
    }

    /// <summary>
    /// The file with the classifier gives the same features (its 'predictions' is not read), and so does a
    /// checkpoint saved from the full model: features work from whatever weights a user has.
    /// </summary>
    [Fact]
    public void FeaturesFromFilesWithTheClassifierEqualKeras()
    {
        Folder();
        using (var model = XceptionModel.LoadFeatures(KerasReference.Weights, "cpu", Size, GlobalPooling.Max))
            AgreesWithKeras("max features from the .h5 with the classifier", model, GlobalPooling.Max);

        using var dir = new TempDir();
        var checkpoint = dir["full.safetensors"];
        using (var full = XceptionModel.Load(KerasReference.Weights, "cpu", Size))
        {
            Assert.True(full.Config.IncludeTop);
            var e = Assert.Throws<InferenceInputException>(() => full.Features(new float[Size * Size * 3], 1));
            Assert.Equal("this model has its classifier: load the weights with LoadFeatures for embeddings", e.Message);
            ModelWeights.Save(full.Model, full.Config, checkpoint);
        }
        using (var model = XceptionModel.LoadFeatures(checkpoint, "cpu", Size))
            AgreesWithKeras("avg features from a checkpoint with the classifier", model, GlobalPooling.Avg);
    }

    [Fact]
    public void FeaturesCommandWritesKerasFeaturesFromAnNpyArray()
    {
        using var dir = new TempDir();
        var (code, output) = CliRun.Run("features", "--weights", Path.Combine(Folder(), "xception_notop.h5"), "--pooling", "max",
            "--input", Path.Combine(Folder(), $"input_{Size}.npy"), "--output", dir["f.npy"], "--device", "cpu");
        Assert.True(code == 0, output);
        var got = Npy.Read(dir["f.npy"]);
        var want = Read($"features_max_{Size}.npy");
        Assert.Equal(want.Shape, got.Shape);
        Check.Close("features --pooling max against Keras", got.Data, want.Data.Select(v => (double)v).ToArray(), 1e-4);
    }

    [Fact]
    public void LoadFeaturesRefusesPoolingNone()
    {
        var e = Assert.Throws<InferenceInputException>(() => XceptionModel.LoadFeatures("unused.h5", "cpu", pooling: GlobalPooling.None));
        Assert.Equal("features need average or max pooling, got None", e.Message);
    }
}
