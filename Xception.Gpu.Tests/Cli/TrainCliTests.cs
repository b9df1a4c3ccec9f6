using Xception.Gpu.Tests.IO;
using Xception.Gpu.Training;
using Xunit;

namespace Xception.Gpu.Tests.Cli;

/// <summary>`xception train` and `eval` in-process on tiny runs: what they write and how they fail.</summary>
public class TrainCliTests
{
    static (int Code, string Out) Run(params string[] args) => CliRun.Run(args);

    static string[] Tiny(string dir, params string[] more) =>
        ["train", "--data", "synthetic:80", "--batch", "16", "--epochs", "2", "--val-split", "0.2", "--device", "cpu", "--checkpoint-dir", dir, .. more];

    [Fact]
    public void WritesCheckpointsLogPlotAndFinalWeightsThenEvaluates()
    {
        using var tmp = new TempDir();
        var run = tmp["run"];
        var (code, output) = Run(Tiny(run, "--checkpoint-every", "1", "--keep", "2", "--log", tmp["log.csv"], "--save", tmp["final.h5"]));
        Assert.True(code == 0, output);
        Assert.Contains("validation accuracy:", output);
        // 64 training images / 16 = 4 steps per epoch, 8 in all; only the newest 2 checkpoints stay.
        Assert.Equal(new[] { "ckpt-00000007.safetensors", "ckpt-00000008.safetensors" },
            Checkpoints.List(run).Select(Path.GetFileName).ToArray());
        var log = File.ReadAllLines(tmp["log.csv"]);
        Assert.Equal(3, log.Length); // header and two epochs
        Assert.StartsWith("epoch,step,lr,loss,acc", log[0]);
        Assert.True(new FileInfo(Path.Combine(run, "curves.png")).Length > 1000);
        Assert.True(Gpu.IO.ModelWeights.IsHdf5(tmp["final.h5"]));

        (code, output) = Run("eval", "--weights", Path.Combine(run, "ckpt-00000008.safetensors"), "--data", "synthetic:80", "--device", "cpu");
        Assert.True(code == 0, output);
        Assert.Matches(@"test: loss \d+\.\d+, top-1 \d+\.\d+ ?%, top-5 \d+\.\d+ ?% on 16 images", output);
    }

    [Fact]
    public void RefusesToOverwriteARunAndChecksWhatItResumes()
    {
        using var tmp = new TempDir();
        var run = tmp["run"];
        Assert.Equal(0, Run(Tiny(run, "--steps", "2")).Code);
        var (code, output) = Run(Tiny(run));
        Assert.Equal(1, code);
        Assert.Contains($"'{run}' already holds checkpoints of a run: pass --resume {run} to continue it", output);
        (code, output) = Run([.. Tiny(run), "--resume", run, "--batch", "8"]);
        Assert.Equal(1, code);
        Assert.Contains("was trained with batch 16", output);
        Assert.Contains("this run has batch 8", output);
    }

    [Fact]
    public void AResumedRunsLogHoldsEachEvaluationOnce()
    {
        // 4 steps per epoch, a checkpoint every 3 steps and at each epoch's end: 3, 4, 6, 8. Taking away the last two
        // leaves the run as if it had stopped at step 4; the log's epoch-2 row (step 8) is dropped on resume and
        // written again by the resumed run, not written twice.
        using var tmp = new TempDir();
        var run = tmp["run"];
        var (code, output) = Run(Tiny(run, "--checkpoint-every", "3", "--keep", "5"));
        Assert.True(code == 0, output);
        var log = Path.Combine(run, "log.jsonl");
        var first = TrainingLog.Read(log);
        Assert.Equal([4L, 8], first.Select(r => r.Step));
        File.Delete(Path.Combine(run, "ckpt-00000008.safetensors"));
        File.Delete(Path.Combine(run, "ckpt-00000006.safetensors"));
        (code, output) = Run([.. Tiny(run, "--checkpoint-every", "3", "--keep", "5"), "--resume", run]);
        Assert.True(code == 0, output);
        var again = TrainingLog.Read(log);
        Assert.Equal([4L, 8], again.Select(r => r.Step));
        Assert.Equal(first[0], again[0]);
        Assert.Equal(first[1].ValLoss, again[1].ValLoss); // the same run: the same weights at step 8
        Assert.True(again[1].ElapsedSeconds > again[0].ElapsedSeconds);
    }

    [Fact]
    public void ANonFiniteLossStopsTheRunAndNamesTheLastCheckpoint()
    {
        using var tmp = new TempDir();
        var (code, output) = Run(Tiny(tmp["run"], "--lr", "1e30", "--lr-schedule", "constant", "--checkpoint-every", "1"));
        Assert.Equal(1, code);
        Assert.Matches(@"xception: error: the loss became (NaN|Infinity|-Infinity) at step \d+ \(epoch 1, batch \d+\); stopped without saving\. The last good checkpoint is '.*ckpt-\d{8}\.safetensors'\.", output);
    }

    [Fact]
    public void MultiLabelListTrainsWithTheJftRecipeAndReportsMapAt100()
    {
        using var tmp = new TempDir();
        var lines = new List<string>();
        for (int i = 0; i < 24; i++)
        {
            var png = Inference.InferenceApiTests.WritePng(tmp, $"img{i}.png", 32, 32, i);
            lines.Add($"{Path.GetFileName(png)} {i % 4} {(i % 4 + 1) % 4}" + (i % 3 == 0 ? " 4" : ""));
        }
        File.WriteAllLines(tmp["labels.txt"], lines);
        var (code, output) = Run("train", "--data", tmp["labels.txt"], "--recipe", "jft", "--batch", "8", "--epochs", "2",
            "--val-split", "0.25", "--image-size", "32", "--device", "cpu", "--checkpoint-dir", tmp["run"]);
        Assert.True(code == 0, output);
        Assert.Contains("optimizer: RmsProp lr 0.001 x 0.9 every 3,000,000 samples", output);
        Assert.Matches(@"validation MAP@100: \d+\.\d+ ?%", output);
    }

    [Fact]
    public void OutOfMemoryNamesABatchThatFits()
    {
        var e = new TrainingOutOfMemoryException("cuda:0", 256, 80L << 30, 400L << 20, 300L << 20);
        Assert.Equal("out of memory on cuda:0 at batch 256: training needs about 300 MiB per image plus 400 MiB for weights, gradients and optimizer state; a batch of 244 would fit in its 80.0 GiB", e.Message);
        Assert.Equal(244, e.FittingBatch);
        var none = new TrainingOutOfMemoryException("cuda:0", 1, 1L << 30, 400L << 20, 2L << 30);
        Assert.EndsWith("not even one image fits: use a smaller image size", none.Message);
        Assert.Equal(0, none.FittingBatch);
    }

    [Fact]
    public void BadTrainingInputIsOneLine()
    {
        using var tmp = new TempDir();
        var (code, output) = Run("train", "--data", tmp["missing"], "--device", "cpu");
        Assert.Equal(1, code);
        Assert.Single(output.Trim().Split('\n'));
        Assert.Contains(tmp["missing"], output);
        (code, output) = Run("train", "--recipe", "jft", "--data", "synthetic:40", "--device", "cpu", "--checkpoint-dir", tmp["r"]);
        Assert.Equal(1, code);
        Assert.Contains("--recipe jft trains multi-label sigmoid outputs, but the data is single-label", output);
        (code, output) = Run("train", "--optimizer", "adam");
        Assert.Equal(2, code);
        Assert.Equal("xception: --optimizer must be sgd or rmsprop, got 'adam'", output.Trim());
    }
}
