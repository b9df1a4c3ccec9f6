using Xception.Gpu.IO;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Cli;

/// <summary>
/// The `xception` command given bad arguments and broken data: one line that says what was wrong, the exit
/// code (2 for usage mistakes, 1 for bad input), never an internal error, and nothing written.
/// </summary>
public class CliBadInputTests
{
    static string[] Tiny(string dir, params string[] more) =>
        ["train", "--data", "synthetic:40", "--batch", "8", "--steps", "1", "--val-split", "0", "--device", "cpu", "--checkpoint-dir", dir, .. more];

    /// <summary>The output's error line (the one starting "xception:"), asserting it is the only one and is clean.</summary>
    static string ErrorLine(string output)
    {
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith("xception:") && !l.StartsWith("xception: warning")).ToList();
        Assert.True(lines.Count == 1, $"expected one error line, got:\n{output}");
        Assert.DoesNotContain("internal error", lines[0]);
        Assert.DoesNotContain("Exception", lines[0]);
        return lines[0];
    }

    static void NothingWritten(string dir) =>
        Assert.True(!Directory.Exists(dir) || Directory.GetFiles(dir).Length == 0, $"'{dir}' holds {string.Join(", ", Directory.Exists(dir) ? Directory.GetFiles(dir) : [])}");

    [Theory]
    [InlineData("--lr", "nan")]
    [InlineData("--momentum", "NaN")]
    [InlineData("--weight-decay", "nan")]
    [InlineData("--epsilon", "nan")]
    [InlineData("--lr", "Infinity")]
    [InlineData("--label-smoothing", "-nan")]
    public void NonFiniteNumbersAreRefusedAtParseTime(string option, string value)
    {
        using var tmp = new TempDir();
        var (code, output) = CliRun.Run(Tiny(tmp["run"], option, value));
        Assert.Equal(2, code);
        Assert.Equal($"xception: {option} expects a finite number, got '{value}'", ErrorLine(output));
        NothingWritten(tmp["run"]);
    }

    [Fact]
    public void NonFiniteScheduleSettingsAreRefused()
    {
        using var tmp = new TempDir();
        var (code, output) = CliRun.Run(Tiny(tmp["run"], "--lr-schedule", "exponential", "--lr-decay-epochs", "nan"));
        Assert.Equal(2, code);
        Assert.Equal("xception: --lr-decay-epochs expects a finite number, got 'nan'", ErrorLine(output));
        (code, output) = CliRun.Run(Tiny(tmp["run"], "--lr-schedule", "step", "--lr-steps", "1,nan"));
        Assert.Equal(2, code);
        Assert.Equal("xception: --lr-steps: 'nan' is not a finite number of epochs >= 0", ErrorLine(output));
        (code, output) = CliRun.Run(Tiny(tmp["run"], "--lr-schedule", "step", "--lr-steps", "3,2"));
        Assert.Equal(2, code);
        Assert.Equal("xception: --lr-steps must increase, got '3,2'", ErrorLine(output));
        NothingWritten(tmp["run"]);
    }

    [Theory]
    [InlineData("--augment", "crop", "xception: --augment must be scale-crop, shift[:P] or none, got 'crop'")]
    [InlineData("--augment", "shift:0", "xception: --augment shift:P takes a whole number of pixels from 1 to 64, got 'shift:0'")]
    [InlineData("--augment", "shift:x", "xception: --augment shift:P takes a whole number of pixels from 1 to 64, got 'shift:x'")]
    [InlineData("--random-erasing", "1.5", "xception: --random-erasing must be between 0 and 1, got 1.5")]
    public void BadAugmentationSettingsAreRefused(string option, string value, string line)
    {
        using var tmp = new TempDir();
        var (code, output) = CliRun.Run(Tiny(tmp["run"], option, value));
        Assert.Equal(2, code);
        Assert.Equal(line, ErrorLine(output));
        (code, output) = CliRun.Run(Tiny(tmp["run"], "--no-augment", "--random-erasing", "0.5"));
        Assert.Equal(2, code);
        Assert.Equal("xception: --random-erasing is augmentation: it needs --augment scale-crop or shift", ErrorLine(output));
        NothingWritten(tmp["run"]);
    }

    [Fact]
    public void CpuThreadsAreBounded()
    {
        using var tmp = new TempDir();
        var (code, output) = CliRun.Run(Tiny(tmp["run"], "--cpu-threads", "4096"));
        Assert.Equal(2, code);
        Assert.Equal($"xception: --cpu-threads must be between 1 and {Device.MaxCpuThreads}, got 4096", ErrorLine(output));
        NothingWritten(tmp["run"]);
    }

    /// <summary>Every output path is checked before the first step: a run never trains and then cannot save.</summary>
    [Fact]
    public void UnwritableOutputsAreRefusedBeforeTraining()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp["file"], "x");
        var cases = new (string[] Args, string Expected)[]
        {
            (Tiny(tmp["file"]), $"xception: error: --checkpoint-dir '{tmp["file"]}' is a file, expected a folder"),
            (Tiny("/proc/xception-run"), "xception: error: --checkpoint-dir: cannot create the folder '/proc/xception-run'"),
            (Tiny(tmp["r1"], "--log", tmp["missing/log.jsonl"]), $"xception: error: --log '{tmp["missing/log.jsonl"]}': its folder '{tmp["missing"]}' does not exist"),
            (Tiny(tmp["r2"], "--save", tmp.Path), $"xception: error: --save '{tmp.Path}' is a folder, expected a file name"),
            (Tiny(tmp["r3"], "--plot", "/proc/curves.png"), "xception: error: --plot '/proc/curves.png' cannot be written"),
        };
        foreach (var (args, expected) in cases)
        {
            var (code, output) = CliRun.Run(args);
            Assert.True(code == 1, output);
            Assert.StartsWith(expected, ErrorLine(output));
        }
        foreach (var r in new[] { "r1", "r2", "r3" }) NothingWritten(tmp[r]);
        Assert.False(Directory.Exists("/proc/xception-run"));
    }

    /// <summary>
    /// A log that cannot be written once training runs (here: a full disk, /dev/full) is a warning; the run's
    /// checkpoint and final weights are still written. Temporary files of an interrupted write are removed.
    /// </summary>
    [Fact]
    public void ALogThatFailsMidRunIsAWarningAndLeftoversAreRemoved()
    {
        if (!File.Exists("/dev/full")) Assert.Skip("no /dev/full on this machine");
        using var tmp = new TempDir();
        var run = tmp["run"];
        Directory.CreateDirectory(run);
        int deadPid = Enumerable.Range(4_000_000, 1000).First(p => { try { System.Diagnostics.Process.GetProcessById(p).Dispose(); return false; } catch (ArgumentException) { return true; } });
        var leftover = Path.Combine(run, $".ckpt-00000001.safetensors.{deadPid}.tmp");
        File.WriteAllText(leftover, "half a checkpoint");
        var (code, output) = CliRun.Run(Tiny(run, "--log", "/dev/full"));
        Assert.True(code == 0, output);
        Assert.Contains($"removed {Path.GetFileName(leftover)} in {run}, left by a write that was interrupted", output);
        Assert.False(File.Exists(leftover));
        Assert.Contains("warning: could not write the log '/dev/full' (No space left on device", output);
        Assert.True(File.Exists(Path.Combine(run, "ckpt-00000001.safetensors")));
        Assert.True(File.Exists(Path.Combine(run, "final.safetensors")));
    }

    /// <summary>A set whose images are all unreadable stops training and evaluation with an error, not NaN.</summary>
    [Fact]
    public void DataWithNoReadableImageIsAnError()
    {
        using var tmp = new TempDir();
        var broken = tmp["broken"];
        for (int c = 0; c < 10; c++)
        {
            Directory.CreateDirectory(Path.Combine(broken, $"c{c}"));
            File.WriteAllText(Path.Combine(broken, $"c{c}", "x.png"), "not a png");
        }
        // Without weights, the small model's size comes from the first readable image: there is none.
        var (code, output) = CliRun.Run("train", "--data", broken, "--device", "cpu", "--checkpoint-dir", tmp["a"], "--steps", "1");
        Assert.Equal(1, code);
        Assert.StartsWith("xception: error: none of the first 10 images of the data could be read (the first: image file '", ErrorLine(output));
        NothingWritten(tmp["a"]);

        // With weights the model is known and the trainer meets the unreadable images itself.
        var weights = tmp["w.safetensors"];
        (code, output) = CliRun.Run(Tiny(tmp["w"], "--save", weights));
        Assert.True(code == 0, output);
        (code, output) = CliRun.Run("train", "--data", broken, "--weights", weights, "--device", "cpu", "--checkpoint-dir", tmp["b"], "--batch", "4", "--val-split", "0");
        Assert.Equal(1, code);
        Assert.StartsWith("xception: error: no training image could be read in epoch 1: 10 images were unreadable and skipped (e.g. ", ErrorLine(output));
        Assert.EndsWith("; nothing was trained", ErrorLine(output));
        NothingWritten(tmp["b"]);

        (code, output) = CliRun.Run("eval", "--data", broken, "--weights", weights, "--device", "cpu", "--split", "all");
        Assert.Equal(1, code);
        Assert.StartsWith("xception: error: no image of the all set could be read: 10 unreadable images skipped (e.g. ", ErrorLine(output));
        Assert.DoesNotContain("NaN", output);
    }

    [Fact]
    public void OneClassDataIsWarnedAbout()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["one/only"]);
        for (int i = 0; i < 4; i++) InferenceApiTestsPng(tmp, $"one/only/{i}.png", i);
        var (code, output) = CliRun.Run("train", "--data", tmp["one"], "--device", "cpu", "--checkpoint-dir", tmp["run"], "--steps", "1", "--batch", "2", "--val-split", "0");
        Assert.True(code == 0, output);
        Assert.Contains("warning: the data has 1 class: a classifier has nothing to learn (its loss is 0 from the start)", output);
    }

    static void InferenceApiTestsPng(TempDir dir, string name, int seed) =>
        Inference.InferenceApiTests.WritePng(dir, name, 32, 32, seed);

    [Fact]
    public void PredictRefusesFoldersEmptyArraysNonFiniteInputAndTooLargeSizes()
    {
        using var tmp = new TempDir();
        var weights = tmp["w.safetensors"];
        var (code, output) = CliRun.Run(Tiny(tmp["w"], "--save", weights));
        Assert.True(code == 0, output);

        (code, output) = CliRun.Run("predict", "--weights", weights, "--device", "cpu", tmp.Path);
        Assert.Equal(1, code);
        Assert.Equal($"xception: error: image '{tmp.Path}' is a folder, expected an image file", ErrorLine(output));

        Npy.Write(tmp["empty.npy"], [], [0, 32, 32, 3]);
        (code, output) = CliRun.Run("predict", "--weights", weights, "--device", "cpu", "--input", tmp["empty.npy"], "--output", tmp["y.npy"]);
        Assert.Equal(1, code);
        Assert.Equal($"xception: error: '{tmp["empty.npy"]}' holds no images (shape (0, 32, 32, 3)); expected (N, S, S, channels) with N >= 1", ErrorLine(output));

        var x = new float[2 * 32 * 32 * 3];
        x[32 * 32 * 3 + 7] = float.NaN;
        Npy.Write(tmp["nan.npy"], x, [2, 32, 32, 3]);
        (code, output) = CliRun.Run("predict", "--weights", weights, "--device", "cpu", "--input", tmp["nan.npy"], "--output", tmp["y.npy"]);
        Assert.Equal(1, code);
        Assert.Equal($"xception: error: input value {32 * 32 * 3 + 7} (image 1) is NaN: the model takes finite values (Keras' 'tf' preprocessing gives -1..1)", ErrorLine(output));
        Assert.False(File.Exists(tmp["y.npy"]));

        // An image size whose activations cannot fit is refused before anything is allocated.
        (code, output) = CliRun.Run(Tiny(tmp["big"], "--model", "xception", "--image-size", "8192"));
        Assert.Equal(1, code);
        Assert.Matches(@"^xception: error: xception at 8192x8192x3 needs at least [\d.]+ GiB for training at batch 8 \([\d.]+ GiB of activations per image\), more than the [\d.]+ (GiB|MiB) of cpu:0 .*: not even one image fits: use a smaller image size$", ErrorLine(output));
        NothingWritten(tmp["big"]);
    }

    [Fact]
    public void ImageBombsAreRefusedThroughPredictAndTheLimitIsASetting()
    {
        using var tmp = new TempDir();
        var weights = tmp["w.safetensors"];
        var (code, output) = CliRun.Run(Tiny(tmp["w"], "--save", weights));
        Assert.True(code == 0, output);
        var small = Inference.InferenceApiTests.WritePng(tmp, "small.png", 40, 30);
        (code, output) = CliRun.Run("predict", "--weights", weights, "--device", "cpu", "--max-image-pixels", "1000", small);
        Assert.Equal(1, code);
        Assert.Contains($"image file '{small}' is 40x30 = 1,200 pixels, more than the limit of 1,000", output);
        Assert.Equal(Gpu.Imaging.ImageLoader.DefaultMaxPixels, Gpu.Imaging.ImageLoader.MaxPixels); // restored after the run
        (code, output) = CliRun.Run("predict", "--weights", weights, "--device", "cpu", "--max-image-pixels", "1200", small);
        Assert.True(code == 0, output);
        (code, output) = CliRun.Run("predict", "--weights", weights, "--device", "cpu", "--max-image-pixels", "0", small);
        Assert.Equal(2, code);
        Assert.Equal("xception: --max-image-pixels expects a whole number of pixels >= 1, got '0'", ErrorLine(output));
    }
}
