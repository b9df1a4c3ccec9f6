using System.Diagnostics;
using Xception.Gpu.Data;
using Xception.Gpu.IO;
using Xception.Gpu.Tests.IO;
using Xception.Gpu.Training;
using Xunit;

namespace Xception.Gpu.Tests.Parallel;

/// <summary>
/// `xception train --devices` (replicas in one process) and `--distributed mpi` (ranks under mpirun): the same
/// weights either way, exact resume, and a failing or killed replica stopping the whole run with the last
/// checkpoint intact. The MPI tests skip visibly where Open MPI is missing (XCEPTION_REQUIRE_MPI=1 makes that
/// a failure, as CI sets it).
/// </summary>
public class DistributedTrainingTests
{
    static string Xception => Path.Combine(AppContext.BaseDirectory, "xception");

    /// <summary>A small run: 3 steps of 16 images of the mini model on 1 core per replica (so both layouts chunk their sums alike).</summary>
    static string[] Small(string dir, params string[] more) =>
        ["train", "--data", "synthetic:120", "--batch", "16", "--steps", "3", "--val-split", "0.2", "--seed", "4", "--cpu-threads", "1",
         "--checkpoint-dir", dir, "--save", Path.Combine(dir, "final.safetensors"), .. more];

    static (int Code, string Out) Cli(params string[] args) => CliRun.Run(args);

    static List<NamedTensor> Weights(string file) => SafeTensors.Read(file).Tensors.ToList();

    static void AssertBitIdentical(string a, string b)
    {
        var (wa, wb) = (Weights(a), Weights(b));
        Assert.Equal(wa.Select(t => t.Name), wb.Select(t => t.Name));
        for (int i = 0; i < wa.Count; i++)
            Assert.True(wa[i].Data.AsSpan().SequenceEqual(wb[i].Data), $"{wa[i].Name} differs");
    }

    /// <summary>Relative difference of two runs' updates from the same start: ||(a - s) - (b - s)|| / ||b - s||.</summary>
    static double UpdateError(string start, string a, string b)
    {
        var (ws, wa, wb) = (Weights(start).ToDictionary(t => t.Name), Weights(a), Weights(b).ToDictionary(t => t.Name));
        double num = 0, den = 0;
        foreach (var t in wa.Where(t => !t.Name.StartsWith("optimizer/")))
        {
            var (s, o) = (ws[t.Name].Data, wb[t.Name].Data);
            for (int i = 0; i < t.Data.Length; i++)
            {
                double d = t.Data[i] - (double)o[i], u = o[i] - (double)s[i];
                num += d * d; den += u * u;
            }
        }
        return Math.Sqrt(num / den);
    }

    [Fact]
    public void SyncBatchNormReplicasTrainLikeOneDevice()
    {
        using var tmp = new TempDir();
        var (code, output) = Cli(Small(tmp["one"], "--device", "cpu", "--steps", "1"));
        Assert.True(code == 0, output);
        // The start: the weights `train` initializes from its seed (4), with the run's configuration.
        var config = ModelWeights.ConfigOf(Path.Combine(tmp["one"], "final.safetensors"), new Gpu.Architecture.XceptionConfig());
        using (var start = Gpu.Architecture.XceptionBuilder.Build(config))
        {
            start.Initialize(4);
            Directory.CreateDirectory(tmp["start"]);
            ModelWeights.Save(start, config, Path.Combine(tmp["start"], "final.safetensors"));
        }
        foreach (var n in new[] { 2, 3 })
        {
            (code, output) = Cli(Small(tmp[$"dp{n}"], "--devices", $"cpu*{n}", "--sync-bn", "--steps", "1"));
            Assert.True(code == 0, output);
            Assert.Contains($"{n} replicas, batch 16 split", output);
            double err = UpdateError(Path.Combine(tmp["start"], "final.safetensors"), Path.Combine(tmp[$"dp{n}"], "final.safetensors"), Path.Combine(tmp["one"], "final.safetensors"));
            TestContext.Current.SendDiagnosticMessage($"xception train --devices cpu*{n} --sync-bn vs one device, one step: update error {err:E2}");
            Assert.True(err <= 1e-3, $"{n} replicas with sync BN differ from one device by {err:E2}");
        }
    }

    [Fact]
    public void ReplicasResumeExactly()
    {
        using var tmp = new TempDir();
        string[] common = ["--devices", "cpu*2", "--lr-schedule", "constant", "--checkpoint-every", "2"];
        var (code, output) = Cli(Small(tmp["full"], [.. common, "--steps", "4"]));
        Assert.True(code == 0, output);
        (code, output) = Cli(Small(tmp["part"], [.. common, "--steps", "2"]));
        Assert.True(code == 0, output);
        (code, output) = Cli(Small(tmp["part"], [.. common, "--steps", "4", "--resume", tmp["part"]]));
        Assert.True(code == 0, output);
        Assert.Contains("resuming at epoch 1, batch 3 (step 2)", output);
        AssertBitIdentical(Path.Combine(tmp["full"], "final.safetensors"), Path.Combine(tmp["part"], "final.safetensors"));
    }

    [Fact]
    public void ABatchSmallerThanTheReplicasIsRefused()
    {
        using var tmp = new TempDir();
        var (code, output) = Cli(Small(tmp["r"], "--devices", "cpu*3", "--batch", "2"));
        Assert.Equal(1, code);
        Assert.Equal("xception: error: --batch 2 cannot be split over 3 replicas: each needs at least one image", output.Trim());
        (code, output) = Cli(Small(tmp["r"], "--devices", "cuda*0"));
        Assert.Equal(1, code);
        Assert.Contains("--devices 'cuda*0': expected a list such as cpu:0,cpu:1", output);
        (code, output) = Cli(Small(tmp["r"], "--device", "cpu", "--devices", "cpu*2"));
        Assert.Equal(2, code);
        (code, output) = Cli(Small(tmp["r"], "--distributed", "mpi"));
        Assert.Equal(2, code);
        Assert.Contains("start the ranks with mpirun", output);
    }

    [Fact]
    public void BenchDevicesPrintsARowPerReplicaCount()
    {
        // A smoke test of the command (the figures themselves go to BENCHMARKS.md, never into assertions).
        var (code, output) = Cli("bench", "--devices", "cpu*2", "--image-size", "16", "--batch", "4", "--steps", "1", "--bucket-mb", "0.1");
        Assert.True(code == 0, output);
        Assert.Matches(@"(?m)^ +1 +[\d.]+ +[\d.]+ +0\.0 +- +1\.00 +100 ?%", output);
        Assert.Matches(@"(?m)^ +2 +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +\d+ ?%", output);
        Assert.Contains("all-reduce alone, 2 replicas, 3.8 MB", output);
        Assert.Contains("buckets", output);
    }

    /// <summary>A training image folder whose one unreadable image falls in the third batch of the first epoch (on its second replica's share).</summary>
    static string FolderWithBadImageInBatch3(TempDir tmp, int seed)
    {
        var root = tmp["images"];
        for (int c = 0; c < 2; c++)
        {
            Directory.CreateDirectory(Path.Combine(root, $"class{c}"));
            for (int i = 0; i < 12; i++)
                File.Move(Inference.InferenceApiTests.WritePng(tmp, $"tmp{c}_{i}.png", 32, 32, c * 100 + i), Path.Combine(root, $"class{c}", $"img{i:D2}.png"));
        }
        var source = new ImageFolderSource(root);
        var order = Split.Make(source.Count, 0, seed).EpochOrder(0);
        // Batch 3 (0-based 2) of 4 images is positions 8..11; the second replica's share is 10..11.
        File.WriteAllBytes(source.Files[order[10]], [0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
        return root;
    }

    [Fact]
    public void AFailingReplicaStopsTheRunAndKeepsTheLastCheckpoint()
    {
        using var tmp = new TempDir();
        var data = FolderWithBadImageInBatch3(tmp, 5);
        var (code, output) = Cli("train", "--data", data, "--strict", "--batch", "4", "--val-split", "0", "--seed", "5", "--epochs", "1",
            "--devices", "cpu*2", "--checkpoint-every", "1", "--checkpoint-dir", tmp["run"]);
        Assert.Equal(1, code);
        Assert.Contains("xception: error:", output);
        Assert.Contains("img", output); // names the image
        Assert.Equal(["ckpt-00000001.safetensors", "ckpt-00000002.safetensors"], Checkpoints.List(tmp["run"]).Select(Path.GetFileName));
        Assert.NotNull(SafeTensors.Read(Path.Combine(tmp["run"], "ckpt-00000002.safetensors")).Metadata["train_state"]);
    }

    // ---- MPI ----

    static void RequireMpirun()
    {
        bool have = File.Exists("/usr/bin/mpirun") && (File.Exists("/usr/lib/x86_64-linux-gnu/libmpi.so.40") || File.Exists("/usr/lib/libmpi.so.40"));
        if (have) return;
        const string reason = "Open MPI (mpirun, libmpi.so.40) is not installed: apt-get install openmpi-bin libopenmpi-dev";
        if (Environment.GetEnvironmentVariable("XCEPTION_REQUIRE_MPI") == "1") Assert.Fail($"XCEPTION_REQUIRE_MPI=1 but {reason}");
        Assert.Skip(reason);
    }

    static Process Mpirun(int ranks, params string[] args)
    {
        // As root (containers, CI) Open MPI refuses to start without --allow-run-as-root; --oversubscribe lets
        // two ranks share a machine with fewer free slots.
        var psi = new ProcessStartInfo("mpirun", ["--allow-run-as-root", "--oversubscribe", "-np", $"{ranks}", Xception, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        psi.Environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"; // containers often forbid the cross-process memory mapping it tries
        var p = Process.Start(psi)!;
        p.StandardInput.Close();
        return p;
    }

    static (int Code, string Out) RunMpi(int ranks, TimeSpan limit, params string[] args)
    {
        using var p = Mpirun(ranks, args);
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"mpirun did not finish in {limit}: {so.Result}{se.Result}");
        }
        return (p.ExitCode, so.Result + se.Result);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TwoMpiRanksMatchTwoReplicasInOneProcess(bool syncBn)
    {
        RequireMpirun();
        using var tmp = new TempDir();
        string[] bn = syncBn ? ["--sync-bn"] : [];
        var (code, output) = Cli(Small(tmp["local"], ["--devices", "cpu*2", "--bucket-mb", "0", .. bn]));
        Assert.True(code == 0, output);
        // Under MPI, small buckets (several per step) reduce while the backward pass runs (not with sync BN:
        // MPI is used from one thread at a time); in-process, one bucket after it: the same bits either way.
        (code, output) = RunMpi(2, TimeSpan.FromMinutes(5), Small(tmp["mpi"], ["--distributed", "mpi", "--devices", "cpu", "--bucket-mb", "0.25", .. bn]));
        Assert.True(code == 0, output);
        Assert.Matches(@"2 MPI ranks x devices cpu:0 \(.*\): 2 replicas, batch 16 split 8 each", output);
        Assert.Single(output.Split('\n'), l => l.StartsWith("saved ")); // only rank 0 reports and saves
        // Bit-identical: the in-process group adds the two replicas' buffers as 0 + a + b, MPI as a + b, the
        // same float32 sum; every other step is the same code on the same data.
        AssertBitIdentical(Path.Combine(tmp["local"], "final.safetensors"), Path.Combine(tmp["mpi"], "final.safetensors"));
        AssertBitIdentical(Path.Combine(tmp["local"], "ckpt-00000003.safetensors"), Path.Combine(tmp["mpi"], "ckpt-00000003.safetensors"));
    }

    [Fact]
    public void AFailingRankStopsEveryRank()
    {
        RequireMpirun();
        using var tmp = new TempDir();
        var data = FolderWithBadImageInBatch3(tmp, 5);
        var (code, output) = RunMpi(2, TimeSpan.FromMinutes(5), "train", "--data", data, "--strict", "--batch", "4", "--val-split", "0", "--seed", "5",
            "--epochs", "1", "--distributed", "mpi", "--devices", "cpu", "--checkpoint-every", "1", "--checkpoint-dir", tmp["run"]);
        Assert.NotEqual(0, code);
        // The bad image is in the second replica's share: rank 1 reads it (data is sharded by rank), tells rank 0
        // at the start of step 3, and both stop there; rank 0 has finished step 2's checkpoint by then.
        Assert.Matches(@"xception: error: rank 1 of 2 \(.*\): .*img\d\d\.png", output);
        Assert.Contains("xception: error: rank 0 of 2", output);
        Assert.Contains("process 1 could not load its data", output);
        TestContext.Current.SendDiagnosticMessage("a rank that cannot read its image: " + string.Join(" / ", output.Split('\n').Where(l => l.StartsWith("xception:")).Select(l => l.Trim())));
        Assert.Equal(["ckpt-00000001.safetensors", "ckpt-00000002.safetensors"], Checkpoints.List(tmp["run"]).Select(Path.GetFileName));
        Assert.NotNull(SafeTensors.Read(Path.Combine(tmp["run"], "ckpt-00000002.safetensors")).Metadata["train_state"]);
    }

    [Fact]
    public void SkippedImagesAreCountedOverAllRanks()
    {
        RequireMpirun();
        using var tmp = new TempDir();
        var data = FolderWithBadImageInBatch3(tmp, 5);
        // Without --strict the bad image (on rank 1's shard) is skipped: that step runs on 3 images (2 + 1,
        // weighted as such), and rank 0 reports the count of all ranks.
        var (code, output) = RunMpi(2, TimeSpan.FromMinutes(5), "train", "--data", data, "--batch", "4", "--val-split", "0", "--seed", "5",
            "--epochs", "1", "--distributed", "mpi", "--devices", "cpu", "--checkpoint-dir", tmp["run"]);
        Assert.True(code == 0, output);
        Assert.Contains("1 unreadable images skipped so far", output);
    }

    [Fact]
    public async Task AKilledRankEndsTheJobAndTheRunResumes()
    {
        RequireMpirun();
        using var tmp = new TempDir();
        var dir = tmp["run"];
        string[] args = ["train", "--data", "synthetic:400", "--batch", "8", "--epochs", "1", "--val-split", "0", "--seed", "6", "--cpu-threads", "1",
            "--distributed", "mpi", "--devices", "cpu", "--lr-schedule", "constant", "--checkpoint-every", "2", "--checkpoint-dir", dir];
        using (var p = Mpirun(2, args))
        {
            var so = p.StandardOutput.ReadToEndAsync();
            var se = p.StandardError.ReadToEndAsync();
            var sw = Stopwatch.StartNew();
            while (!File.Exists(Path.Combine(dir, "ckpt-00000004.safetensors")) && !p.HasExited && sw.Elapsed < TimeSpan.FromMinutes(5))
                Thread.Sleep(20);
            if (p.HasExited) Assert.Fail($"the job ended before a rank could be killed: {await so}{await se}");
            var ranks = RankProcesses(dir);
            Assert.True(ranks.Count == 2, $"found {ranks.Count} rank processes of {dir}");
            ranks[^1].Kill(); // SIGKILL one rank: no handler of ours runs
            Assert.True(p.WaitForExit(TimeSpan.FromMinutes(2)), "mpirun kept running after a rank was killed");
            Assert.NotEqual(0, p.ExitCode);
            TestContext.Current.SendDiagnosticMessage($"mpirun after kill -9 of a rank: exit {p.ExitCode}; {(await so + await se).Split('\n').FirstOrDefault(l => l.Contains("exited on signal"))?.Trim()}");
            Thread.Sleep(500);
            Assert.Empty(RankProcesses(dir)); // the other rank did not stay behind, waiting
        }
        var newest = Checkpoints.List(dir)[^1];
        Assert.NotNull(SafeTensors.Read(newest).Metadata["train_state"]);
        var (code, output) = RunMpi(2, TimeSpan.FromMinutes(5), [.. args, "--steps", "8", "--resume", dir]);
        Assert.True(code == 0, output);
        Assert.Contains("resuming at epoch 1", output);
    }

    /// <summary>The xception processes of a job (not mpirun), found by the run folder in their command line.</summary>
    static List<Process> RankProcesses(string dir)
    {
        var psi = new ProcessStartInfo("pgrep", ["-f", $"^{Xception} .*{dir}"]) { RedirectStandardOutput = true };
        using var pgrep = Process.Start(psi)!;
        var pids = pgrep.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        pgrep.WaitForExit();
        var found = new List<Process>();
        foreach (var pid in pids)
        {
            try { found.Add(Process.GetProcessById(int.Parse(pid))); }
            catch (ArgumentException) { } // ended meanwhile
        }
        return found;
    }
}
