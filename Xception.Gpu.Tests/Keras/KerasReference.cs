using System.Diagnostics;
using System.Security.Cryptography;
using Xunit;

namespace Xception.Gpu.Tests.Keras;

/// <summary>
/// Keras' own outputs for the tests: tools/keras-ref builds keras.applications.Xception in TensorFlow.js
/// layers (Keras' JavaScript port), fills it with seeded random weights, writes them as a Keras HDF5 weight
/// file and writes the logits Keras computes for seeded inputs. The files (84 MB of weights) are generated
/// once per machine into a cache folder, not committed. Sizes 71 and 74: 74 makes the block2 pool see an
/// even size (34), where TensorFlow's 'same' padding is asymmetric (0 before, 1 after).
/// </summary>
public static class KerasReference
{
    public const int Classes = 10, Batch = 2;
    public static readonly int[] Sizes = [71, 74];

    static readonly Lazy<(string? Dir, string Reason)> data = new(Generate);

    /// <summary>The folder with xception_c10.h5, input_S.npy and logits_S.npy; skips the test when unavailable.</summary>
    public static string Folder()
    {
        var (dir, reason) = data.Value;
        if (dir is not null) return dir;
        if (Environment.GetEnvironmentVariable("XCEPTION_REQUIRE_KERAS_REF") == "1")
            Assert.Fail($"XCEPTION_REQUIRE_KERAS_REF=1 but the Keras reference data could not be made: {reason}");
        Assert.Skip($"Keras reference data unavailable: {reason}");
        return null!;
    }

    public static string Weights => Path.Combine(Folder(), $"xception_c{Classes}.h5");

    static (string?, string) Generate() =>
        RunCached("generate.mjs", "xception-keras-ref", "manifest.json", dir =>
            [dir, "--classes", $"{Classes}", "--sizes", string.Join(",", Sizes), "--batch", $"{Batch}", "--seed", "1"]);

    /// <summary>
    /// Runs a tools/keras-ref script once per machine into a temp folder named by the script's hash (a
    /// changed script makes new data) and returns the folder, or null and why it could not be made.
    /// </summary>
    public static (string? Dir, string Reason) RunCached(string script, string cacheName, string marker, Func<string, string[]> args)
    {
        var tool = Path.Combine(RepoRoot(), "tools", "keras-ref");
        var path = Path.Combine(tool, script);
        if (!File.Exists(path)) return (null, $"{path} not found");
        if (!Directory.Exists(Path.Combine(tool, "node_modules"))) return (null, $"run 'npm ci' in {tool} first (needs Node.js)");
        var hash = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)))[..12];
        var dir = Path.Combine(Path.GetTempPath(), $"{cacheName}-{hash}");
        if (File.Exists(Path.Combine(dir, marker))) return (dir, "");
        var psi = new ProcessStartInfo("node", [script, .. args(dir)])
        {
            WorkingDirectory = tool, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        try
        {
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(TimeSpan.FromMinutes(10))) { p.Kill(); return (null, $"{script} took over 10 minutes"); }
            if (p.ExitCode != 0) return (null, $"{script} failed: {err.Result.Trim().Split('\n').LastOrDefault()}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (null, $"cannot run node: {e.Message}");
        }
        return File.Exists(Path.Combine(dir, marker)) ? (dir, "") : (null, $"{script} wrote no {marker}");
    }

    public static string RepoRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "Xception.Gpu.sln"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
    }
}
