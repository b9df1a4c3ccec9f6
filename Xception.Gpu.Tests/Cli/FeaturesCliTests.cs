using Xception.Gpu.Tests.Inference;
using System.Globalization;
using Xception.Gpu.Inference;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Cli;

/// <summary>`xception features` on xception-mini weights trained one step: formats, broken images, errors.</summary>
public class FeaturesCliTests
{
    /// <summary>An xception-mini checkpoint (32 x 32, with its classifier) trained for one step.</summary>
    static string MiniWeights(TempDir dir)
    {
        var weights = dir["mini.safetensors"];
        var (code, output) = CliRun.Run("train", "--data", "synthetic:40", "--batch", "8", "--steps", "1", "--val-split", "0",
            "--device", "cpu", "--checkpoint-dir", dir["run"], "--save", weights);
        Assert.True(code == 0, output);
        return weights;
    }

    static float[] Images(int count, int seed)
    {
        var rnd = new Random(seed);
        var x = new float[count * 32 * 32 * 3];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rnd.NextDouble() * 2 - 1);
        return x;
    }

    [Fact]
    public void WritesNpyAndCsvThatEqualTheLibrary()
    {
        using var dir = new TempDir();
        var weights = MiniWeights(dir);
        Npy.Write(dir["x.npy"], Images(3, 1), [3, 32, 32, 3]);
        float[] want;
        using (var model = XceptionModel.LoadFeatures(weights, "cpu", pooling: GlobalPooling.Max))
        {
            Assert.Equal(XceptionConfig.Mini().Channels(2048), model.FeatureSize);
            want = model.Features(Images(3, 1), 3);
        }
        int c = want.Length / 3;

        var (code, output) = CliRun.Run("features", "--weights", weights, "--pooling", "max", "--device", "cpu",
            "--input", dir["x.npy"], "--output", dir["f.npy"]);
        Assert.True(code == 0, output);
        var npy = Npy.Read(dir["f.npy"]);
        Assert.Equal([3, c], npy.Shape);
        Assert.Equal(want, npy.Data);

        (code, output) = CliRun.Run("features", "--weights", weights, "--pooling", "max", "--device", "cpu",
            "--input", dir["x.npy"], "--output", dir["f.txt"], "--format", "csv");
        Assert.True(code == 0, output);
        var lines = File.ReadAllLines(dir["f.txt"]);
        Assert.Equal(4, lines.Length);
        Assert.Equal("index,f0,f1", string.Join(",", lines[0].Split(',').Take(3)));
        for (int i = 0; i < 3; i++)
        {
            var fields = lines[i + 1].Split(',');
            Assert.Equal($"{i}", fields[0]);
            // Shortest round-trip text: the values read back are the .npy's bits.
            Assert.Equal(want.AsSpan(i * c, c).ToArray(), fields.Skip(1).Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray());
        }
    }

    [Fact]
    public void ImagesGiveALinePerReadableImageAndExitOneForBrokenOnes()
    {
        using var dir = new TempDir();
        var weights = MiniWeights(dir);
        var good = InferenceApiTests.WritePng(dir, "good,1.png", 40, 36, seed: 1);
        var bad = dir.Write("bad.png", [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        var (code, output) = CliRun.Run("features", "--weights", weights, "--device", "cpu", "--output", dir["f.jsonl"], good, bad);
        Assert.Equal(1, code);
        var errors = output.Split('\n').Where(l => l.StartsWith("xception:")).ToList();
        Assert.Single(errors);
        Assert.Contains(bad, errors[0]);
        var line = Assert.Single(File.ReadAllLines(dir["f.jsonl"]));
        using var json = System.Text.Json.JsonDocument.Parse(line);
        Assert.Equal(good, json.RootElement.GetProperty("image").GetString());
        float[] want;
        using (var model = XceptionModel.LoadFeatures(weights, "cpu")) want = model.Features(good);
        Assert.Equal(want, json.RootElement.GetProperty("features").EnumerateArray().Select(v => v.GetSingle()).ToArray());

        (code, output) = CliRun.Run("features", "--weights", weights, "--device", "cpu", "--output", dir["g.csv"], good);
        Assert.True(code == 0, output);
        Assert.StartsWith("\"" + good + "\",", File.ReadAllLines(dir["g.csv"])[1]); // a path with a comma is quoted
    }

    [Theory]
    [InlineData("--pooling", "none", "xception: --pooling must be avg or max, got 'none'")]
    [InlineData("--format", "parquet", "xception: --format must be npy, csv or jsonl, got 'parquet'")]
    public void RefusesBadOptions(string option, string value, string message)
    {
        using var dir = new TempDir();
        var (code, output) = CliRun.Run("features", "--weights", "w.h5", "--output", dir["f.npy"], option, value, "x.png");
        Assert.Equal(2, code);
        Assert.Equal(message, output.Trim());
    }

    [Fact]
    public void ChecksTheOutputBeforeLoadingTheModel()
    {
        using var dir = new TempDir();
        var image = InferenceApiTests.WritePng(dir, "a.png");
        var (code, output) = CliRun.Run("features", "--weights", dir["missing.h5"], "--output", dir["no/such/f.npy"], image);
        Assert.Equal(1, code);
        Assert.StartsWith("xception: error: --output '", output.Trim());
        Assert.Contains("does not exist", output);
    }
}
