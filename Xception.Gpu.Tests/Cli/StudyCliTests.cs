using System.Diagnostics;
using System.Text.Json;
using Xception.Gpu.IO;
using Xception.Gpu.Tests.IO;
using Xception.Gpu.Training;
using Xunit;

namespace Xception.Gpu.Tests.Cli;

/// <summary>
/// `xception study` on a tiny synthetic set (16 x 16 images, a few steps): every variant trains, the variants differ
/// only in the switch, the plot and the tables are written, bad options are one line, and an interrupted study
/// continues to the same numbers as one that never stopped.
/// </summary>
public class StudyCliTests
{
    static (int Code, string Out) Run(params string[] args) => CliRun.Run(args);

    static string[] Tiny(string study, string dir, int steps = 5, int seeds = 1) =>
        ["study", study, "--data", "synthetic:48", "--image-size", "16", "--steps", $"{steps}", "--eval-every", "2", "--seeds", $"{seeds}",
         "--test-images", "16", "--batch", "8", "--device", "cpu", "--out", dir];

    static List<LogRow> Log(string path) => TrainingLog.Read(path);

    [Fact]
    public void AStudyTrainsEveryVariantOnTheSameDataAndWritesItsResults()
    {
        using var tmp = new TempDir();
        var dir = tmp["residual"];
        var (code, output) = Run(Tiny("residual", dir, seeds: 2));
        Assert.True(code == 0, output);
        foreach (var run in new[] { "residual-seed0", "no-residual-seed0", "residual-seed1", "no-residual-seed1" })
        {
            // Evaluated every 2 steps and after the last, shorter interval.
            var log = Log(Path.Combine(dir, run, "log.jsonl"));
            Assert.Equal([2L, 4, 5], log.Select(r => r.Step));
            Assert.All(log, r => Assert.InRange(r.ValAcc!.Value, 0, 1));
            Assert.Contains($"{run.Replace("-seed", " seed ")}: step 5/5", output);
        }

        // The only difference is the switch: the same data, order and seed for both variants of a seed
        // (the trainer keeps what it trained on in every checkpoint), another order for another seed.
        Checkpoints.State State(string run) => Checkpoints.ReadState(Checkpoints.Resolve(Path.Combine(dir, run)));
        Assert.Equal(State("residual-seed0").Data, State("no-residual-seed0").Data);
        Assert.Equal(State("residual-seed0").Seed, State("no-residual-seed0").Seed);
        Assert.Equal(State("residual-seed0").Optimizer, State("no-residual-seed0").Optimizer);
        Assert.NotEqual(State("residual-seed0").Data, State("residual-seed1").Data);

        // The plot, the tables and the settings.
        var png = File.ReadAllBytes(Path.Combine(dir, "residual.png"));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        Assert.True(png.Length > 10_000, $"the plot has {png.Length} bytes");
        var md = File.ReadAllText(Path.Combine(dir, "residual.md"));
        Assert.Matches(@"\| residual \| [0-9.]+% ± [0-9.]+ \(min [0-9.]+, max [0-9.]+\) \| 2/2 \| [0-9,]+ \| [0-9.]+ M \| [0-9.]+ \|", md);
        Assert.Contains("| no-residual |", md);
        Assert.Contains("img/s: training images per second", md);
        var csv = File.ReadAllLines(Path.Combine(dir, "residual.csv"));
        Assert.Equal(3, csv.Length);
        Assert.StartsWith("variant,runs_finished,step,top1_mean,top1_std", csv[0]);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "residual.json")));
        var variants = json.RootElement.GetProperty("variants");
        Assert.Equal(2, variants.GetArrayLength());
        // Residual connections cost their shortcut convolutions.
        Assert.True(variants[0].GetProperty("multiply_adds").GetInt64() > variants[1].GetProperty("multiply_adds").GetInt64());
        Assert.True(variants[0].GetProperty("parameters").GetInt64() > variants[1].GetProperty("parameters").GetInt64());
        Assert.Equal("5", JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "study.json"))).RootElement.GetProperty("steps").GetString());
        Assert.Contains("wrote", output);

        // Started again: nothing to do. With other settings: refused, naming the option.
        (code, output) = Run(Tiny("residual", dir, seeds: 2));
        Assert.True(code == 0, output);
        Assert.Contains("residual seed 1: finished earlier", output);
        Assert.DoesNotContain("starting", output);
        // A third seed: the first two are kept, only seed 2 trains, and the table covers all three.
        (code, output) = Run(Tiny("residual", dir, seeds: 3));
        Assert.True(code == 0, output);
        Assert.Contains("residual seed 0: finished earlier", output);
        Assert.Contains("no-residual seed 1: finished earlier", output);
        Assert.Contains("residual seed 2: step 5/5", output);
        Assert.Contains("no-residual seed 2: step 5/5", output);
        Assert.Matches(@"\| residual \| [0-9.]+% ± [0-9.]+ \(min [0-9.]+, max [0-9.]+\) \| 3/3 \|", File.ReadAllText(Path.Combine(dir, "residual.md")));
        Assert.Equal("3", JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "study.json"))).RootElement.GetProperty("seeds").GetString());
        (code, output) = Run(Tiny("residual", dir, steps: 6, seeds: 3));
        Assert.Equal(2, code);
        Assert.Contains("--steps 5, this command asks 6", output);
        (code, output) = Run(Tiny("activation", dir, seeds: 2));
        Assert.Equal(2, code);
        Assert.Contains("holds the residual study, not activation", output);
    }

    [Fact]
    public void TheSegmentsStudyReportsTheCostOfEachSegmentCount()
    {
        using var tmp = new TempDir();
        var dir = tmp["segments"];
        var (code, output) = Run(["study", "segments", "--segments", "1,4,0", "--data", "synthetic:24", "--image-size", "16", "--steps", "2", "--eval-every", "2",
            "--test-images", "8", "--batch", "8", "--device", "cpu", "--out", dir]);
        Assert.True(code == 0, output);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "segments.json")));
        var v = json.RootElement.GetProperty("variants").EnumerateArray().ToList();
        Assert.Equal(["segments-1", "segments-4", "depthwise"], v.Select(x => x.GetProperty("variant").GetString()));
        long Macs(int i) => v[i].GetProperty("multiply_adds").GetInt64();
        long Params(int i) => v[i].GetProperty("parameters").GetInt64();
        // One segment (a full 3x3 convolution) costs most, depthwise least.
        Assert.True(Macs(0) > Macs(1) && Macs(1) > Macs(2), $"{Macs(0)}, {Macs(1)}, {Macs(2)}");
        Assert.True(Params(0) > Params(1) && Params(1) > Params(2), $"{Params(0)}, {Params(1)}, {Params(2)}");
        Assert.All(v, x => Assert.True(x.GetProperty("images_per_second").GetDouble() > 0));
        Assert.True(File.Exists(Path.Combine(dir, "segments.png")));
    }

    [Fact]
    public void AVariantThatDivergesEndsAloneAndTheStudyGoesOn()
    {
        // A rate of 1e30 sends the loss to infinity within a step or two: each run stops there, the others still
        // run, the table is written, and the command says which runs stopped (exit 1).
        using var tmp = new TempDir();
        var dir = tmp["diverged"];
        var (code, output) = Run([.. Tiny("residual", dir, steps: 4), "--lr", "1e30"]);
        Assert.True(code == 1, output);
        Assert.Contains("residual seed 0: stopped: the loss became", output);
        Assert.Contains("no-residual seed 0: stopped: the loss became", output);
        Assert.Contains("xception: error: residual seed 0, no-residual seed 0 stopped early", output);
        Assert.True(File.Exists(Path.Combine(dir, "residual.md")));
    }

    [Theory]
    [InlineData("needs the study to run", "study")]
    [InlineData("unknown study 'inception'; studies: residual, activation, segments", "study", "inception")]
    [InlineData("--segments: 'x' is not a whole number", "study", "segments", "--segments", "1,x", "--data", "synthetic:8")]
    [InlineData("--segments names a value twice", "study", "segments", "--segments", "1,1", "--data", "synthetic:8")]
    [InlineData("--segments 16 does not divide the input channels of every separable layer of xception-mini (16, 32, 64, 184, 256, 384); valid values: 1, 2, 4, 8, and 0 (depthwise)",
        "study", "segments", "--segments", "1,16,0", "--data", "synthetic:8")]
    [InlineData("--segments belongs to the segments study", "study", "residual", "--segments", "1")]
    [InlineData("give --steps or --epochs, not both", "study", "residual", "--steps", "5", "--epochs", "1")]
    [InlineData("--lr-schedule must be cosine or constant", "study", "activation", "--lr-schedule", "step")]
    [InlineData("--seeds must be between 1 and 1000, got 0", "study", "activation", "--seeds", "0")]
    [InlineData("unknown option --steps-per-eval", "study", "activation", "--steps-per-eval", "3")]
    public void BadOptionsAreOneLine(string expected, params string[] args)
    {
        var (code, output) = Run(args);
        Assert.Equal(2, code);
        Assert.Contains(expected, output);
        Assert.Single(output.Trim().Split('\n'));
        Assert.StartsWith("xception: ", output);
    }

    [Fact]
    public void HelpListsTheStudiesAndTheirOptions()
    {
        var (code, output) = Run("study", "--help");
        Assert.Equal(0, code);
        foreach (var s in new[] { "residual", "activation", "segments", "--segments", "--eval-every", "--seeds", "--train-images", "--test-images", "--out" })
            Assert.Contains(s, output);
    }

    static string Xception => Path.Combine(AppContext.BaseDirectory, "xception.dll");

    [Fact]
    public void AnInterruptedStudyContinuesToTheSameResults()
    {
        using var tmp = new TempDir();
        var (code, output) = Run(Tiny("residual", tmp["a"], steps: 8));
        Assert.True(code == 0, output);

        // Ctrl-C once the first run's first checkpoint exists: the step finishes, a checkpoint is written, exit 130.
        var dirB = tmp["b"];
        var said = new System.Text.StringBuilder();
        var psi = new ProcessStartInfo("dotnet", ["exec", Xception, .. Tiny("residual", dirB, steps: 8)]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using (var b = Process.Start(psi)!)
        {
            b.OutputDataReceived += (_, e) => { lock (said) said.AppendLine(e.Data); };
            b.ErrorDataReceived += (_, e) => { lock (said) said.AppendLine(e.Data); };
            b.BeginOutputReadLine();
            b.BeginErrorReadLine();
            var sw = Stopwatch.StartNew();
            while (!File.Exists(Path.Combine(dirB, "residual-seed0", "ckpt-00000002.safetensors")) && !b.HasExited && sw.Elapsed < TimeSpan.FromMinutes(5))
                Thread.Sleep(20);
            Assert.False(b.HasExited, $"the study ended before it could be interrupted: {said}");
            var signal = Interrupt.Send(b);
            Assert.True(b.WaitForExit(TimeSpan.FromMinutes(2)), $"{signal} did not stop the study within two minutes");
            b.WaitForExit();
            Assert.True(b.ExitCode == 130, said.ToString());
        }
        Assert.Contains($"the study continues with the same command and --out {dirB}", said.ToString());
        (code, output) = Run(Tiny("residual", dirB, steps: 8));
        Assert.True(code == 0, output);
        Assert.Contains("resuming at step", output);
        foreach (var run in new[] { "residual-seed0", "no-residual-seed0" })
        {
            var a = Log(Path.Combine(tmp["a"], run, "log.jsonl"));
            var b = Log(Path.Combine(dirB, run, "log.jsonl"));
            Assert.Equal(a.Select(r => (r.Step, r.ValLoss, r.ValAcc!.Value, r.LearningRate)), b.Select(r => (r.Step, r.ValLoss, r.ValAcc!.Value, r.LearningRate)));
            // The training loss of an interval spans the interruption: the checkpoint kept its running sums.
            Assert.Equal(a.Select(r => r.Loss), b.Select(r => r.Loss));
            var (wa, _) = SafeTensors.Read(Path.Combine(tmp["a"], run, "ckpt-00000008.safetensors"));
            var (wb, _) = SafeTensors.Read(Path.Combine(dirB, run, "ckpt-00000008.safetensors"));
            Assert.Equal(wa.Select(t => t.Name), wb.Select(t => t.Name));
            for (int i = 0; i < wa.Count; i++)
                Assert.True(wa[i].Data.AsSpan().SequenceEqual(wb[i].Data), $"{run}: {wa[i].Name} differs after resuming");
        }
    }
}
