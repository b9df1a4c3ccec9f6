using Xception.Gpu.Tests.Inference;
using Xception.Gpu.IO;
using Xception.Gpu.Tests.IO;
using Xception.Gpu.Tests.Keras;
using Xunit;

namespace Xception.Gpu.Tests.Cli;

/// <summary>The xception command run in-process: exit codes, what it prints, and one-line errors.</summary>
public class CliTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (o, e) = (Console.Out, Console.Error);
        var so = new StringWriter(); var se = new StringWriter();
        Console.SetOut(so); Console.SetError(se);
        try
        {
            return (Gpu.Cli.Cli.Run(args), so.ToString(), se.ToString());
        }
        finally
        {
            Console.SetOut(o); Console.SetError(e);
        }
    }

    [Fact]
    public void SummaryPrintsKerasTotals()
    {
        var (code, output, _) = Run("summary");
        Assert.Equal(0, code);
        Assert.Contains("Total params: 22,910,480", output);
        Assert.Contains("Trainable params: 22,855,952", output);
        Assert.Contains("Non-trainable params: 54,528", output);
        (code, output, _) = Run("summary", "--classes", "10", "--image-size", "100");
        Assert.Contains("predictions (Dense)", output);
        Assert.Contains("(None, 10)", output);
    }

    [Fact]
    public void PredictWritesKerasLogitsFromAnNpyArray()
    {
        using var dir = new TempDir();
        var folder = KerasReference.Folder();
        var output = dir["logits.npy"];
        var (code, _, err) = Run("predict", "--weights", KerasReference.Weights, "--classes", "10", "--image-size", "74",
            "--input", Path.Combine(folder, "input_74.npy"), "--output", output, "--logits", "--device", "cpu");
        Assert.True(code == 0, err);
        var got = Npy.Read(output);
        var want = Npy.Read(Path.Combine(folder, "logits_74.npy"));
        Assert.Equal(want.Shape, got.Shape);
        Check.Close("predict --logits against Keras", got.Data, want.Data.Select(v => (double)v).ToArray(), 1e-4);

        (code, _, err) = Run("predict", "--weights", KerasReference.Weights, "--input", Path.Combine(folder, "input_74.npy"),
            "--output", dir["p.npy"], "--device", "cpu");
        Assert.Equal(0, code);
        var probs = Npy.Read(dir["p.npy"]);
        Assert.InRange(probs.Data.Take(10).Sum(), 0.9999f, 1.0001f);

        (code, _, err) = Run("predict", "--weights", KerasReference.Weights, "--classes", "7", "--input", Path.Combine(folder, "input_74.npy"),
            "--output", dir["q.npy"], "--device", "cpu");
        Assert.Equal(1, code);
        Assert.Equal($"xception: error: --classes 7 but '{KerasReference.Weights}' has 10 classes", err.Trim());
    }

    [Fact]
    public void PredictOnImagesPrintsTopClassesAndNamesBrokenFiles()
    {
        using var dir = new TempDir();
        var good = InferenceApiTests.WritePng(dir, "good.png");
        var bad = dir.Write("bad.png", [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        var (code, output, err) = Run("predict", "--weights", KerasReference.Weights, "--image-size", "71", "--top", "3", "--device", "cpu", good, bad);
        Assert.Equal(1, code); // one image failed
        Assert.Contains(good, output);
        Assert.Equal(4, output.Trim().Split('\n').Length); // the file name and three classes
        var errors = err.Split('\n').Where(l => l.StartsWith("xception:")).ToList();
        Assert.Single(errors);
        Assert.Contains(bad, errors[0]);
    }

    [Theory]
    [InlineData(new[] { "predict", "--weights", "/nonexistent/w.h5", "x.png" }, 1, "xception: error: image 'x.png' does not exist")]
    [InlineData(new[] { "bench", "--device", "tpu" }, 1, "xception: error: unknown device 'tpu': expected auto, cpu, cpu:N, cuda, cuda:N, opencl or opencl:N")]
    [InlineData(new[] { "summary", "--image-size", "70" }, 2, "xception: --image-size must be between 71 and 8192, got 70")]
    [InlineData(new[] { "summary", "--segments", "3" }, 1, "xception: error: invalid Xception configuration: segments 3 must divide the input channels of every separable convolution (64, 128, 256, 728, 1024, 1536); it does not divide 64, 128, 256, 728, 1024")]
    [InlineData(new[] { "bench", "--segments", "4" }, 2, "xception: --segments times a whole model's variant: give it with --model and without --devices")]
    [InlineData(new[] { "bench", "--model", "xception-mini", "--segments", "3" }, 1, "xception: error: invalid Xception configuration: segments 3 must divide the input channels of every separable convolution (16, 32, 64, 184, 256, 384); it does not divide 16, 32, 64, 184, 256")]
    [InlineData(new[] { "frobnicate" }, 2, "xception: unknown command 'frobnicate'; commands: devices, bench, summary, predict, features, explain, train, eval, study, export, serve, serve-bench, kernels")]
    [InlineData(new[] { "predict", "--weights" }, 2, "xception: option --weights of 'predict' needs a value")]
    public void BadInputIsOneLineAndANonZeroExit(string[] args, int expectedCode, string message)
    {
        var (code, _, err) = Run(args);
        Assert.Equal(expectedCode, code);
        Assert.Equal(message, err.Trim());
    }

    [Fact]
    public void MissingWeightsFileIsNamed()
    {
        using var dir = new TempDir();
        var img = InferenceApiTests.WritePng(dir, "a.png");
        var (code, _, err) = Run("predict", "--weights", "/nonexistent/w.h5", img);
        Assert.Equal(1, code);
        Assert.Equal("xception: error: weights file '/nonexistent/w.h5' does not exist", err.Trim());
    }
}
