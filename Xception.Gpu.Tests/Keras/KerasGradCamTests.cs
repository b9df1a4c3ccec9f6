using Xception.Gpu.Inference;
using Xception.Gpu.IO;
using Xunit;

namespace Xception.Gpu.Tests.Keras;

/// <summary>
/// Grad-CAM against Keras: tools/keras-ref/gradcam.mjs computes the heatmaps with tf.grad on generate.mjs's
/// seeded Xception (the same weights as <see cref="KerasReference.Weights"/>) and input.
/// </summary>
public class KerasGradCamTests
{
    const int Size = 71;

    static readonly Lazy<(string? Dir, string Reason)> data = new(() =>
        KerasReference.RunCached("gradcam.mjs", "xception-keras-gradcam", "gradcam.json", dir =>
            [dir, "--classes", $"{KerasReference.Classes}", "--size", $"{Size}", "--batch", $"{KerasReference.Batch}", "--seed", "1"]));

    static string Folder()
    {
        var (dir, reason) = data.Value;
        if (dir is not null) return dir;
        if (Environment.GetEnvironmentVariable("XCEPTION_REQUIRE_KERAS_REF") == "1")
            Assert.Fail($"XCEPTION_REQUIRE_KERAS_REF=1 but the Keras Grad-CAM reference could not be made: {reason}");
        Assert.Skip($"Keras Grad-CAM reference unavailable: {reason}");
        return null!;
    }

    /// <summary>
    /// The default (block14_sepconv2_act, each image's top class) and a residual sum read by two layers
    /// (add_11, whose gradient is the sum of both readers') for a given class. The bar: max |ours - Keras'|
    /// over the [0, 1]-normalized heatmaps at most 1e-3.
    /// </summary>
    [Theory]
    [InlineData("block14_sepconv2_act", null, "heatmap_71.npy")]
    [InlineData("add_11", 3, "heatmap_71_add_11_c3.npy")]
    public void HeatmapMatchesKeras(string layer, int? classIndex, string file)
    {
        var dir = Folder();
        var weights = KerasReference.Weights;
        var input = Npy.Read(Path.Combine(dir, $"input_{Size}.npy"));
        var want = Npy.Read(Path.Combine(dir, file));
        var logits = Npy.Read(Path.Combine(dir, $"logits_{Size}.npy"));
        using var model = XceptionModel.Load(weights, "cpu", imageSize: Size);
        var got = model.Explain(input.Data, KerasReference.Batch, classIndex, layer);
        Assert.Equal(KerasReference.Batch, got.Count);
        double worst = 0;
        for (int i = 0; i < got.Count; i++)
        {
            var e = got[i];
            Assert.Equal(layer, e.Layer);
            Assert.Equal(new[] { KerasReference.Batch, e.Height, e.Width }, want.Shape);
            var row = logits.Data.AsSpan(i * KerasReference.Classes, KerasReference.Classes).ToArray();
            int top = Array.IndexOf(row, row.Max());
            Assert.Equal(classIndex ?? top, e.Class);
            Assert.Equal(row[e.Class], e.Logit, 1e-3f);
            int hw = e.Height * e.Width;
            for (int p = 0; p < hw; p++) worst = Math.Max(worst, Math.Abs(e.Heatmap[p] - want.Data[i * hw + p]));
            Assert.Equal(1f, e.Heatmap.Max());
        }
        TestContext.Current.SendDiagnosticMessage($"Grad-CAM {layer} against Keras: max |diff| {worst:E2} on the normalized heatmap");
        Assert.True(worst <= 1e-3, $"Grad-CAM heatmap ({layer}) differs from Keras' by {worst:E2} (max abs), more than 1e-3");
    }
}
