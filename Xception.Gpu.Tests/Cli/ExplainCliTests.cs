using Xception.Gpu.Tests.Inference;
using StbImageSharp;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Cli;

/// <summary>`xception explain` on the small model that one training step makes (quick on a CPU).</summary>
public class ExplainCliTests
{
    static string TinyWeights(TempDir tmp)
    {
        var weights = tmp["w.safetensors"];
        var (code, output) = CliRun.Run("train", "--data", "synthetic:40", "--batch", "8", "--steps", "1", "--val-split", "0",
            "--device", "cpu", "--checkpoint-dir", tmp["run"], "--save", weights);
        Assert.True(code == 0, output);
        return weights;
    }

    static ImageResult Decode(string path) => ImageResult.FromMemory(File.ReadAllBytes(path), ColorComponents.RedGreenBlue);

    [Fact]
    public void ImagesGiveHeatmapsAndOverlaysAtTheImagesSize()
    {
        using var tmp = new TempDir();
        var weights = TinyWeights(tmp);
        var a = InferenceApiTests.WritePng(tmp, "a.png", 90, 80, 0);
        var b = InferenceApiTests.WritePng(tmp, "b.png", 64, 100, 1);
        var (code, output) = CliRun.Run("explain", "--weights", weights, "--device", "cpu", "--heatmap", tmp["h.npy"], "--output", tmp["out"], a, b);
        Assert.True(code == 0, output);
        Assert.Contains($"{a}: class ", output);
        var h = Npy.Read(tmp["h.npy"]);
        Assert.Equal(3, h.Shape.Length);
        Assert.Equal(2, h.Shape[0]);
        Assert.All(h.Data, v => Assert.InRange(v, 0f, 1f));
        for (int i = 0; i < 2; i++)
        {
            var map = h.Data.AsSpan(i * h.Shape[1] * h.Shape[2], h.Shape[1] * h.Shape[2]).ToArray();
            Assert.True(map.Max() == 1f || map.All(v => v == 0), $"heatmap {i} is not normalized: max {map.Max()}");
        }
        var pa = Decode(Path.Combine(tmp["out"], "a.gradcam.png"));
        var pb = Decode(Path.Combine(tmp["out"], "b.gradcam.png"));
        Assert.Equal((90, 80), (pa.Width, pa.Height));
        Assert.Equal((64, 100), (pb.Width, pb.Height));
    }

    [Fact]
    public void PreprocessedInputGivesOverlaysAtTheInputSize()
    {
        using var tmp = new TempDir();
        var weights = TinyWeights(tmp);
        int s = ModelWeights.ConfigOf(weights, new XceptionConfig()).ImageSize;
        var rnd = new Random(3);
        var x = Enumerable.Range(0, 3 * s * s * 3).Select(_ => (float)(rnd.NextDouble() * 2 - 1)).ToArray();
        Npy.Write(tmp["x.npy"], x, [3, s, s, 3]);
        var (code, output) = CliRun.Run("explain", "--weights", weights, "--device", "cpu", "--input", tmp["x.npy"], "--class", "1",
            "--layer", "block2_sepconv2_bn", "--heatmap", tmp["h.npy"], "--output", tmp["out"]);
        Assert.True(code == 0, output);
        Assert.Contains("image 2: class 1 ", output);
        Assert.Equal(3, Npy.Read(tmp["h.npy"]).Shape[0]);
        for (int i = 0; i < 3; i++)
        {
            var p = Decode(Path.Combine(tmp["out"], $"image_{i}.gradcam.png"));
            Assert.Equal((s, s), (p.Width, p.Height));
        }
    }

    [Fact]
    public void UnknownLayerAndClassOutOfRangeAreOneLine()
    {
        using var tmp = new TempDir();
        var weights = TinyWeights(tmp);
        var img = InferenceApiTests.WritePng(tmp, "a.png");
        var (code, output) = CliRun.Run("explain", "--weights", weights, "--device", "cpu", "--layer", "block99", img);
        Assert.Equal(1, code);
        var line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("xception:"));
        Assert.StartsWith("xception: error: --layer 'block99' is not a layer with a spatial output; those are the ", line);
        Assert.Contains("block1_conv1", line);
        (code, output) = CliRun.Run("explain", "--weights", weights, "--device", "cpu", "--class", "999", img);
        Assert.Equal(1, code);
        line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("xception:"));
        Assert.Matches(@"^xception: error: --class 999 is out of range: '.*' has \d+ classes \(0\.\.\d+\)$", line);
    }
}
