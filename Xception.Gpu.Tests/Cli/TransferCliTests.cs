using System.Runtime.InteropServices;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Tests.IO;
using Xception.Gpu.Training;
using Xunit;

namespace Xception.Gpu.Tests.Cli;

/// <summary>
/// Transfer learning through `xception train`: --new-head from every kind of weights file, --freeze base
/// leaving the base's bits alone, and how --resume, --freeze and --new-head refuse what they cannot do.
/// </summary>
public class TransferCliTests
{
    static (int Code, string Out) Run(params string[] args) => CliRun.Run(args);

    /// <summary>Every tensor of a weights file (.h5 or safetensors) by "layer/weight", with its Keras shape.</summary>
    static Dictionary<string, (int[] Shape, float[] Data)> Tensors(string path)
    {
        var config = ModelWeights.ConfigOf(path, XceptionConfig.Mini());
        using var model = XceptionBuilder.Build(config);
        ModelWeights.Load(model, path);
        return model.Layers.SelectMany(l => l.Parameters.Select(p => ($"{l.Name}/{p.Name}", (p.KerasShape.ToArray(), p.Host.ToArray()))))
            .ToDictionary(t => t.Item1, t => t.Item2);
    }

    static bool SameBits(float[] a, float[] b) =>
        MemoryMarshal.AsBytes(a.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(b.AsSpan()));

    /// <summary>The names of the tensors outside the classifier whose bits differ between the two files.</summary>
    static List<string> BaseDifferences(Dictionary<string, (int[] Shape, float[] Data)> file, Dictionary<string, (int[] Shape, float[] Data)> saved)
    {
        var differ = new List<string>();
        foreach (var (name, t) in file)
        {
            if (name.StartsWith("predictions/")) continue;
            if (!saved.TryGetValue(name, out var s)) differ.Add($"{name} (missing)");
            else if (!SameBits(t.Data, s.Data)) differ.Add(name);
        }
        return differ;
    }

    /// <summary>A folder of 3 classes x 4 PNGs of 32 x 32: a class count none of the base files has.</summary>
    static string ThreeClassFolder(TempDir tmp)
    {
        foreach (var c in new[] { "cat", "dog", "fox" })
        {
            Directory.CreateDirectory(tmp[Path.Combine("pngs", c)]);
            for (int i = 0; i < 4; i++) Inference.InferenceApiTests.WritePng(tmp, Path.Combine("pngs", c, $"{i}.png"), 32, 32, i + c.Length);
        }
        return tmp["pngs"];
    }

    static string[] Train(string data, string runDir, params string[] more) =>
        ["train", "--data", data, "--model", "xception-mini", "--steps", "1", "--batch", "4", "--val-split", "0", "--no-augment",
         "--device", "cpu", "--checkpoint-dir", runDir, .. more];

    static void AssertSingleErrorLine(string output, string contains)
    {
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var errors = lines.Where(l => l.StartsWith("xception:")).ToList();
        Assert.True(errors.Count == 1, output);
        Assert.Contains(contains, errors[0]);
        Assert.DoesNotContain(lines, l => l.StartsWith("at ")); // no stack trace
    }

    [Fact]
    public void NewHeadKeepsTheBaseOfATopH5ANoTopH5AndACheckpointAndSizesTheHeadForTheData()
    {
        using var tmp = new TempDir();
        var pngs = ThreeClassFolder(tmp);
        var top = XceptionConfig.Mini(32, 3, 10);
        using (var m = XceptionBuilder.Build(top))
        {
            m.Initialize(7);
            ModelWeights.Save(m, top, tmp["top.h5"]);
        }
        var noTop = top with { IncludeTop = false, Pooling = GlobalPooling.Avg };
        using (var m = XceptionBuilder.Build(noTop))
        {
            m.Initialize(8);
            ModelWeights.Save(m, noTop, tmp["notop.h5"]);
        }
        var files = new List<string> { tmp["top.h5"], tmp["notop.h5"] };
        // A checkpoint as a run writes it (10 synthetic classes, one step).
        var (code, output) = Run(Train("synthetic:40", tmp["run0"]));
        Assert.True(code == 0, output);
        files.Add(Assert.Single(Checkpoints.List(tmp["run0"])));

        int features = top.Channels(2048);
        foreach (var file in files)
        {
            var run = tmp[$"run-{Path.GetFileName(file)}"];
            var saved = tmp[$"head-{Path.GetFileName(file)}.safetensors"];
            (code, output) = Run(Train(pngs, run, "--weights", file, "--new-head", "--freeze", "base", "--lr", "0.1", "--save", saved));
            Assert.True(code == 0, $"{file}: {output}");
            Assert.Matches($@"loaded \d+ layers from {System.Text.RegularExpressions.Regex.Escape(file)}; started fresh: predictions", output);

            var initial = Tensors(file);
            var after = Tensors(saved);
            Assert.Empty(BaseDifferences(initial, after));
            Assert.Equal(initial.Keys.Count(k => !k.StartsWith("predictions/")), after.Keys.Count(k => !k.StartsWith("predictions/")));
            Assert.Equal([features, 3], after["predictions/kernel"].Shape);
            Assert.Equal([3], after["predictions/bias"].Shape);
            Assert.Contains(after["predictions/kernel"].Data, v => v != 0); // a fresh Glorot kernel, not zeros
        }
        TestContext.Current.SendDiagnosticMessage($"--new-head from {string.Join(", ", files.Select(Path.GetFileName))}: base bit-identical, head ({features}, 3)");
    }

    [Fact]
    public void AFrozenBaseKeepsItsBitsAndResumeRestoresTheFrozenSet()
    {
        using var tmp = new TempDir();
        var config = XceptionConfig.Mini(32, 3, 10);
        var initialFile = tmp["initial.h5"];
        using (var m = XceptionBuilder.Build(config))
        {
            m.Initialize(3);
            ModelWeights.Save(m, config, initialFile);
        }
        var run = tmp["run"];
        var (code, output) = Run(Train("synthetic:40", run, "--weights", initialFile, "--freeze", "base", "--lr", "0.1"));
        Assert.True(code == 0, output);
        var frozenLine = output.Split('\n').Single(l => l.StartsWith("frozen:")).Trim();
        Assert.Matches(@"^frozen: \d+ layers, \S+ to \S+; [\d,]+ trainable parameters; batch norm mode auto", frozenLine);

        var initial = Tensors(initialFile);
        var ckpt = Assert.Single(Checkpoints.List(run));
        var afterOne = Tensors(ckpt);
        Assert.Empty(BaseDifferences(initial, afterOne));
        Assert.False(SameBits(initial["predictions/kernel"].Data, afterOne["predictions/kernel"].Data), "the classifier did not train");

        // Resuming without --freeze takes the checkpoint's frozen set: same report, and the base still untouched.
        (code, output) = Run(Train("synthetic:40", run, "--weights", initialFile, "--resume", run, "--steps", "2", "--lr", "0.1"));
        Assert.True(code == 0, output);
        Assert.Contains(frozenLine, output);
        var newest = Checkpoints.List(run)[^1];
        Assert.NotEqual(ckpt, newest);
        Assert.Empty(BaseDifferences(initial, Tensors(newest)));

        // An explicit --freeze that disagrees with the checkpoint is refused in one line, before any step.
        int checkpoints = Checkpoints.List(run).Count;
        (code, output) = Run(Train("synthetic:40", run, "--weights", initialFile, "--resume", run, "--steps", "3", "--freeze", "none"));
        Assert.NotEqual(0, code);
        AssertSingleErrorLine(output, "leave out --freeze to continue it as it was");
        Assert.Equal(checkpoints, Checkpoints.List(run).Count);
    }

    [Fact]
    public void AnUnknownFreezeAndANewHeadWithoutWeightsAreOneLineErrors()
    {
        using var tmp = new TempDir();
        var (code, output) = Run(Train("synthetic:40", tmp["a"], "--freeze", "no_such_layer"));
        Assert.NotEqual(0, code);
        AssertSingleErrorLine(output, "--freeze must be base, none or a layer name");
        Assert.Empty(Checkpoints.List(tmp["a"]));

        (code, output) = Run(Train("synthetic:40", tmp["b"], "--new-head"));
        Assert.NotEqual(0, code);
        AssertSingleErrorLine(output, "--new-head needs --weights");
        Assert.Empty(Checkpoints.List(tmp["b"]));
    }
}
