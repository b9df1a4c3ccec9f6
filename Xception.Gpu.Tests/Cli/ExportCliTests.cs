using System.Security.Cryptography;
using Onnx;
using PureHDF;
using Xception.Gpu.Inference;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Tests.IO;
using Xception.Gpu.Tests.Keras;
using Xception.Gpu.Tests.Architecture;
using Xunit;

namespace Xception.Gpu.Tests.Cli;

/// <summary>
/// `xception export`: weights out as Keras .h5 and plain safetensors (a trained checkpoint gives its weights only),
/// the .h5 loaded by Keras' own loading rule, and the command's refusals.
/// </summary>
public class ExportCliTests
{
    /// <summary>
    /// A checkpoint of a training run (weights, optimizer state, training position) exports its weights only, in
    /// all three forms; each loads back (the .h5 and safetensors through the project's loaders, the ONNX model in
    /// ONNX Runtime) and gives what the checkpoint gives.
    /// </summary>
    [Fact]
    public void ATrainedCheckpointExportsItsWeightsOnly()
    {
        using var dir = new TempDir();
        var (code, output) = CliRun.Run("train", "--data", "synthetic:40", "--batch", "8", "--steps", "1", "--val-split", "0",
            "--device", "cpu", "--checkpoint-dir", dir["run"]);
        Assert.True(code == 0, output);
        var ckpt = Directory.GetFiles(dir["run"], "ckpt-*.safetensors").Single();
        Assert.Contains(SafeTensors.ReadHeader(ckpt).Tensors, t => t.Name.StartsWith("optimizer/"));

        (code, output) = CliRun.Run("export", "--weights", ckpt, "--h5", dir["w.h5"], "--safetensors", dir["w.safetensors"],
            "--onnx", dir["m.onnx"], "--batch", "2");
        Assert.True(code == 0, output);
        Assert.Contains($"wrote {dir["m.onnx"]}: ONNX opset 17, input input_1 (2, 32, 32, 3) NHWC float32, output predictions (probabilities)", output);

        using var trained = XceptionModel.Load(ckpt, "cpu");
        trained.Model.SyncToHost();
        var (tensors, meta) = SafeTensors.Read(dir["w.safetensors"]);
        // Keras' names and shapes, in model order, and nothing else: no optimizer slots, no training position.
        var expected = trained.Model.Layers.SelectMany(l => l.Parameters.Select(p => (Name: $"{l.Name}/{p.Name}", p.KerasShape, p.Host))).ToList();
        Assert.Equal(expected.Select(e => e.Name), tensors.Select(t => t.Name));
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].KerasShape, tensors[i].Shape);
            Assert.Equal(expected[i].Host, tensors[i].Data);
        }
        Assert.Equal(new[] { "config", "format" }, meta.Keys.Order());
        Assert.Equal(trained.Config, XceptionConfig.FromJson(meta["config"]));

        var x = Images(2, 32, seed: 3);
        var want = trained.Probabilities(x, 2);
        foreach (var file in new[] { dir["w.h5"], dir["w.safetensors"] })
        {
            using var back = XceptionModel.Load(file, "cpu");
            Assert.Equal(trained.Config, back.Config);
            Assert.Equal(want, back.Probabilities(x, 2));
        }
        var (y, _) = OnnxRun.Run(File.ReadAllBytes(dir["m.onnx"]), x, [2, 32, 32, 3]);
        Check.Close("ONNX export of a trained checkpoint", y, want.Select(v => (double)v).ToArray(), 1e-5);
    }

    static float[] Images(int count, int size, int seed)
    {
        var rnd = new Random(seed);
        return Enumerable.Range(0, count * size * size * 3).Select(_ => (float)(rnd.NextDouble() * 2 - 1)).ToArray();
    }

    /// <summary>The safetensors export of Keras' weights names every tensor as Keras' own file does (weight_names without ':0').</summary>
    [Fact]
    public void SafeTensorsNamesAndShapesAreKeras()
    {
        using var dir = new TempDir();
        var (code, output) = CliRun.Run("export", "--weights", KerasReference.Weights, "--safetensors", dir["w.safetensors"]);
        Assert.True(code == 0, output);
        var header = SafeTensors.ReadHeader(dir["w.safetensors"]);
        var keras = new List<(string Name, int[] Shape)>();
        using (var f = H5File.OpenRead(KerasReference.Weights))
            foreach (var layer in f.Attribute("layer_names").Read<string[]>())
            {
                if (!f.Group(layer).LinkExists(layer)) continue; // no weights
                foreach (var w in f.Group(layer).Attribute("weight_names").Read<string[]>())
                    keras.Add((w[..w.LastIndexOf(':')], f.Dataset($"{layer}/{w}").Space.Dimensions.Select(d => (int)d).ToArray()));
            }
        // The same names and shapes; the order is the model's (Keras orders layers of equal depth its own way).
        Assert.Equal(keras.Count, header.Tensors.Count);
        Assert.Equal(keras.Select(k => k.Name).Order(), header.Tensors.Select(t => t.Name).Order());
        var shapes = header.Tensors.ToDictionary(t => t.Name, t => t.Shape);
        foreach (var (name, shape) in keras) Assert.Equal(shape, shapes[name]);
        Assert.Contains(header.Tensors, t => t.Name == "block1_conv1/kernel" && t.Shape.SequenceEqual([3, 3, 3, 32]));
    }

    /// <summary>
    /// Weights trained here (random, away from Keras' file), exported with --h5, loaded into Keras' Xception by
    /// Keras' own rule (TensorFlow.js layers; tools/keras-ref/load-h5.mjs: layers with weights paired by order,
    /// counts and shapes checked): Keras' logits equal the project's within 1e-4.
    /// </summary>
    [Fact]
    public void ExportedH5LoadsIntoKeras()
    {
        using var dir = new TempDir();
        var config = new XceptionConfig { ImageSize = 71, Classes = KerasReference.Classes };
        using var own = XceptionModel.Create(config, "cpu");
        ModelFixtures.Randomize(own.Model, seed: 11);
        ModelWeights.Save(own.Model, config, dir["trained.safetensors"]);
        var (code, output) = CliRun.Run("export", "--weights", dir["trained.safetensors"], "--h5", dir["w.h5"]);
        Assert.True(code == 0, output);

        var input = Path.Combine(KerasReference.Folder(), "input_71.npy");
        var h5 = dir["w.h5"];
        string hash = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(h5)))[..12];
        var (outDir, reason) = KerasReference.RunCached("load-h5.mjs", $"xception-keras-load-h5-{hash}", "done.json",
            d => [d, "--weights", h5, "--input", input, "--classes", $"{KerasReference.Classes}"]);
        if (outDir is null)
        {
            // Keras refusing the file is this test failing; only a missing Node or tools/keras-ref is a skip.
            if (reason.StartsWith("load-h5.mjs failed") || Environment.GetEnvironmentVariable("XCEPTION_REQUIRE_KERAS_REF") == "1")
                Assert.Fail($"Keras could not load the exported .h5: {reason}");
            Assert.Skip($"Keras (tools/keras-ref) unavailable: {reason}");
        }
        var kerasLogits = Npy.Read(Path.Combine(outDir, "logits.npy"));
        var x = Npy.Read(input);
        var ours = own.Logits(x.Data, x.Shape[0]);
        TestContext.Current.SendDiagnosticMessage($"Keras with the exported .h5: relative error of the logits {OnnxRun.RelativeError(ours, kerasLogits.Data).Norm:E2}");
        Check.Close("Keras' logits with the exported .h5 against the project's", ours, kerasLogits.Data.Select(v => (double)v).ToArray(), 1e-4);
    }

    /// <summary>
    /// Keras' load_weights pairs an .h5 file's layers with the model's by order, so the file lists them in Keras'
    /// model.layers order: exactly the order of the file Keras (TensorFlow.js) wrote for its own Xception.
    /// </summary>
    [Fact]
    public void H5LayersAreInKerasOrder()
    {
        using var dir = new TempDir();
        var (code, output) = CliRun.Run("export", "--weights", KerasReference.Weights, "--h5", dir["w.h5"]);
        Assert.True(code == 0, output);
        string[] Names(string path)
        {
            using var f = H5File.OpenRead(path);
            return f.Attribute("layer_names").Read<string[]>();
        }
        Assert.Equal(Names(KerasReference.Weights), Names(dir["w.h5"]));
    }

    public static TheoryData<string[], int, string> Refusals => new()
    {
        { ["export", "--onnx", "m.onnx"], 2, "xception: export needs --weights W (a Keras .h5 file or a checkpoint)" },
        { ["export", "--weights", "W"], 2, "xception: export needs an output: --onnx F, --h5 F or --safetensors F (or several)" },
        { ["export", "--weights", "W", "--onnx", "m.onnx", "--opset", "12"], 2, "xception: --opset must be between 13 and 21, got 12" },
        { ["export", "--weights", "W", "--onnx", "m.onnx", "--image-size", "71", "--dynamic-size"], 2, "xception: give --image-size or --dynamic-size, not both" },
        { ["export", "--weights", "W", "--onnx", "m.onnx", "--batch", "2", "--dynamic-batch"], 2, "xception: give --batch or --dynamic-batch, not both" },
        { ["export", "--weights", "W", "--h5", "w.h5", "--logits"], 2, "xception: --logits applies to the ONNX model: add --onnx F" },
        { ["export", "--weights", "W", "--h5", "x", "--safetensors", "x"], 2, "xception: each output needs its own file" },
        { ["export", "--weights", "W", "--onnx", "m.onnx", "--pooling", "mean"], 2, "xception: --pooling must be avg, max or none, got 'mean'" },
        { ["export", "--weights", "/nonexistent/w.h5", "--onnx", "m.onnx"], 1, "xception: error: weights file '/nonexistent/w.h5' does not exist" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void MistakesGetOneLine(string[] args, int exit, string message)
    {
        using var dir = new TempDir();
        // Relative outputs land in a fresh folder, so that a refusal that should have written nothing shows.
        var cwd = Environment.CurrentDirectory;
        Environment.CurrentDirectory = dir.Path;
        try
        {
            var (code, output) = CliRun.Run(args);
            Assert.Equal(message, output.TrimEnd());
            Assert.Equal(exit, code);
            Assert.Empty(Directory.GetFiles(dir.Path));
        }
        finally
        {
            Environment.CurrentDirectory = cwd;
        }
    }

    [Fact]
    public void AMissingOutputFolderIsRefusedBeforeTheWeightsLoad()
    {
        var (code, output) = CliRun.Run("export", "--weights", "/nonexistent/w.h5", "--onnx", "/nonexistent/dir/m.onnx");
        Assert.Equal(1, code);
        Assert.Equal("xception: error: --onnx '/nonexistent/dir/m.onnx': its folder '/nonexistent/dir' does not exist", output.TrimEnd());
    }

    [Fact]
    public void HelpListsTheOutputs()
    {
        var (code, output) = CliRun.Run("export", "--help");
        Assert.Equal(0, code);
        foreach (var option in new[] { "--onnx", "--h5", "--safetensors", "--dynamic-size", "--dynamic-batch", "--logits", "--opset" })
            Assert.Contains(option, output);
    }

    /// <summary>A Keras file without the classifier, with --pooling avg: the ONNX output is Keras' pooling layer.</summary>
    [Fact]
    public void NoTopWithPoolingExportsTheFeatures()
    {
        using var dir = new TempDir();
        var notop = Path.Combine(KerasFeaturesTests.Folder(), "xception_notop.h5");
        var (code, output) = CliRun.Run("export", "--weights", notop, "--pooling", "avg", "--image-size", "71", "--onnx", dir["f.onnx"]);
        Assert.True(code == 0, output);
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(dir["f.onnx"]));
        Assert.Equal("avg_pool", proto.Graph.Output.Single().Name);
        Assert.DoesNotContain(proto.Graph.Node, n => n.Name == "predictions");
    }
}
