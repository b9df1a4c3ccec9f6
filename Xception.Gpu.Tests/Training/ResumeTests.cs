using System.Diagnostics;
using Xception.Gpu.IO;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Training;

/// <summary>
/// kill -9 or Ctrl-C in the middle of training, then --resume: the final weights must equal those of a run that was
/// never interrupted, bit for bit (the CPU accelerator's kernels are deterministic, and everything random
/// in training is a function of the seed, epoch, batch and step).
/// </summary>
public class ResumeTests
{
    static string Xception => Path.Combine(AppContext.BaseDirectory, "xception.dll");

    static Process Start(params string[] args) => Start(new System.Text.StringBuilder(), args);

    static Process Start(System.Text.StringBuilder output, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet", ["exec", Xception, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    static string[] TrainArgs(string dir, string save) =>
        ["train", "--data", "synthetic:120", "--epochs", "2", "--batch", "16", "--val-split", "0.2", "--seed", "3", "--device", "cpu",
         "--dropout", "0.3", "--checkpoint-dir", dir, "--checkpoint-every", "2", "--save", save];

    [Fact]
    public void KilledOrInterruptedRunsResumeToTheSameWeights()
    {
        using var tmp = new TempDir();
        var full = tmp["full.safetensors"];
        using (var a = Start(TrainArgs(tmp["a"], full)))
        {
            Assert.True(a.WaitForExit(TimeSpan.FromMinutes(5)), "the uninterrupted run did not finish in 5 minutes");
            Assert.Equal(0, a.ExitCode);
        }

        // Kill the second run once its checkpoint of step 4 exists: batch 4 of 6 of the first epoch.
        var dirB = tmp["b"];
        var resumed = tmp["resumed.safetensors"];
        using (var b = Start(TrainArgs(dirB, resumed)))
        {
            var sw = Stopwatch.StartNew();
            while (!File.Exists(Path.Combine(dirB, "ckpt-00000004.safetensors")) && !b.HasExited && sw.Elapsed < TimeSpan.FromMinutes(5))
                Thread.Sleep(20);
            Assert.False(b.HasExited, "the run ended before it could be killed");
            b.Kill(entireProcessTree: true); // SIGKILL: no cleanup runs
            b.WaitForExit();
        }
        Assert.False(File.Exists(resumed));
        var left = Directory.GetFiles(dirB, "ckpt-*.safetensors").Select(Path.GetFileName).Order().ToList();
        Assert.Contains("ckpt-00000004.safetensors", left);
        Assert.True(string.CompareOrdinal(left[^1], "ckpt-00000012.safetensors") < 0, $"the killed run got to the end: {string.Join(", ", left)}");

        using (var c = Start([.. TrainArgs(dirB, resumed), "--resume", dirB]))
        {
            Assert.True(c.WaitForExit(TimeSpan.FromMinutes(5)));
            Assert.Equal(0, c.ExitCode);
        }
        var (wa, _) = SafeTensors.Read(full);
        var (wb, _) = SafeTensors.Read(resumed);
        Assert.Equal(wa.Select(t => t.Name), wb.Select(t => t.Name));
        for (int i = 0; i < wa.Count; i++)
            Assert.True(wa[i].Data.AsSpan().SequenceEqual(wb[i].Data), $"{wa[i].Name} differs after resuming");
        // Ctrl-C (SIGINT) once a checkpoint of step 2 exists: the run finishes its step, writes a checkpoint,
        // says how to resume and exits 130; resumed, it ends with the same weights too.
        var dirD = tmp["d"];
        var interrupted = tmp["interrupted.safetensors"];
        var said = new System.Text.StringBuilder();
        string signal;
        using (var d = Start(said, TrainArgs(dirD, interrupted)))
        {
            var sw = Stopwatch.StartNew();
            while (!File.Exists(Path.Combine(dirD, "ckpt-00000002.safetensors")) && !d.HasExited && sw.Elapsed < TimeSpan.FromMinutes(5))
                Thread.Sleep(20);
            Assert.False(d.HasExited, "the run ended before it could be interrupted");
            signal = Interrupt.Send(d);
            Assert.True(d.WaitForExit(TimeSpan.FromMinutes(1)), $"{signal} did not stop the run within a minute");
            d.WaitForExit();
            Assert.Equal(130, d.ExitCode);
        }
        Assert.False(File.Exists(interrupted));
        var text = said.ToString();
        Assert.Contains($"{signal}: finishing this step and writing a checkpoint", text);
        Assert.Contains($"the run continues with: xception train --resume {dirD}", text);
        var stoppedAt = Directory.GetFiles(dirD, "ckpt-*.safetensors").Select(Path.GetFileName).Order().Last()!;
        Assert.Contains($"checkpoint {Path.Combine(dirD, stoppedAt)}", text);
        Assert.True(string.CompareOrdinal(stoppedAt, "ckpt-00000012.safetensors") < 0, $"the interrupted run got to the end: {stoppedAt}");
        using (var e = Start([.. TrainArgs(dirD, interrupted), "--resume", dirD]))
        {
            Assert.True(e.WaitForExit(TimeSpan.FromMinutes(5)));
            Assert.Equal(0, e.ExitCode);
        }
        var (wd, _) = SafeTensors.Read(interrupted);
        for (int i = 0; i < wa.Count; i++)
            Assert.True(wa[i].Data.AsSpan().SequenceEqual(wd[i].Data), $"{wa[i].Name} differs after an interrupted run resumed");

        // The weights did train (not a check that cannot fail: compare with the first checkpoint).
        var (first, _) = SafeTensors.Read(Path.Combine(tmp["a"], Directory.GetFiles(tmp["a"], "ckpt-*").Order().First()));
        Assert.False(first.First(t => t.Name.EndsWith("pointwise_kernel")).Data.AsSpan().SequenceEqual(wa.First(t => t.Name.EndsWith("pointwise_kernel")).Data));
    }
}
