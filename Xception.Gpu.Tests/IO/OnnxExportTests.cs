using Onnx;
using Xception.Gpu.Graph;
using Xception.Gpu.Graph.Layers;
using Xception.Gpu.Inference;
using Xception.Gpu.IO;
using Xception.Gpu.IO.Onnx;
using Xception.Gpu.Architecture;
using Xception.Gpu.Ops;
using Xception.Gpu.Tests.Keras;
using Xception.Gpu.Tests.Architecture;
using Xunit;

namespace Xception.Gpu.Tests.IO;

/// <summary>
/// Every exported model runs in ONNX Runtime and gives the project's own outputs and Keras' logits.
///
/// Tolerances. Against the project's own outputs (the same float32 weights through the CPU accelerator):
/// ||onnx - ours|| / ||ours|| &lt;= 1e-5. The two differ by rounding only: ONNX Runtime sums in another order
/// (its own convolution and GEMM kernels), and the folded batch norm rounds W * gamma / sqrt(var + eps) once
/// to float32 where the project rounds the convolution's sum and then normalizes it. Each is a few u
/// (u = 6e-8) per layer; over Xception's 36 convolutions and 12 residual sums it grows to 6e-8 .. 9.2e-7 here
/// (5.4e-7 on the full model's logits; figures in the README), so 1e-5 leaves a margin of ten while a wrong pad,
/// a wrong layout or an unfolded batch norm is 1e-2 or more. Against Keras (TensorFlow.js' float32 CPU kernels):
/// 1e-4, the bar the project's own Keras-equivalence tests use.
/// </summary>
public class OnnxExportTests
{
    const double OwnTolerance = 1e-5, KerasTolerance = 1e-4;

    static void Agrees(string what, float[] actual, float[] expected, double tol)
    {
        var (norm, max) = OnnxRun.RelativeError(actual, expected);
        TestContext.Current.SendDiagnosticMessage($"{what}: relative error {norm:E2} (largest difference {max:E2} of the largest value)");
        Check.Close(what, actual, expected.Select(v => (double)v).ToArray(), tol);
    }

    static float[] Random(int count, int seed)
    {
        var rnd = new Random(seed);
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = (float)(rnd.NextDouble() * 2 - 1);
        return x;
    }

    static NpyArray Keras(string name) => Npy.Read(Path.Combine(KerasReference.Folder(), name));

    /// <summary>
    /// The export's contract: `xception export --weights W.h5 --image-size 71 --logits --onnx m.onnx` gives a
    /// model that ONNX Runtime runs to Keras' logits within 1e-4; the graph's names and shapes are Keras'.
    /// </summary>
    [Fact]
    public void KerasWeightsExportedAt71GiveKerasLogits()
    {
        using var dir = new TempDir();
        var (code, output) = CliRun.Run("export", "--weights", KerasReference.Weights, "--image-size", "71", "--logits", "--onnx", dir["m.onnx"]);
        Assert.True(code == 0, output);
        var bytes = File.ReadAllBytes(dir["m.onnx"]);
        var x = Keras("input_71.npy");
        var (y, shape) = OnnxRun.Run(bytes, x.Data, x.Shape);
        Assert.Equal([KerasReference.Batch, KerasReference.Classes], shape);
        Agrees("ONNX Runtime at 71x71 against Keras' logits", y, Keras("logits_71.npy").Data, KerasTolerance);
        using var own = XceptionModel.Load(KerasReference.Weights, "cpu", 71);
        Agrees("ONNX Runtime at 71x71 against the project's logits", y, own.Logits(x.Data, x.Shape[0]), OwnTolerance);

        var proto = ModelProto.Parser.ParseFrom(bytes);
        Assert.Equal(OnnxExport.Producer, proto.ProducerName);
        Assert.Equal(OnnxExportOptions.DefaultOpset, proto.OpsetImport.Single(o => o.Domain == "").Version);
        var input = proto.Graph.Input.Single();
        Assert.Equal("input_1", input.Name);
        Assert.Equal(["batch", "71", "71", "3"], Dims(input));
        var result = proto.Graph.Output.Single();
        Assert.Equal("predictions", result.Name);
        Assert.Equal(["batch", $"{KerasReference.Classes}"], Dims(result));
        NamesAreKeras(own.Model, proto);
        // Every batch norm of Xception follows a convolution: all folded, none left as a node.
        Assert.DoesNotContain(proto.Graph.Node, n => n.OpType == "BatchNormalization");
        Assert.Equal(own.Model.Layers.Count(l => l is BatchNormLayer), proto.Graph.Node.Count(n => n.DocString.Contains("folded")));
        Assert.Contains(proto.Graph.Node, n => n.Name == "block1_conv1" && n.DocString.StartsWith("block1_conv1 + block1_conv1_bn folded"));
        Assert.Contains(proto.Graph.Initializer, t => t.Name == "block1_conv1/kernel" && t.Dims.SequenceEqual([32L, 3, 3, 3]));
        Assert.Contains(proto.Graph.Initializer, t => t.Name == "block2_sepconv1/depthwise_kernel" && t.Dims.SequenceEqual([64L, 1, 3, 3]));
        Assert.Contains("xception_gpu_config", proto.MetadataProps.Select(p => p.Key));
    }

    /// <summary>
    /// Every layer of the model is in the graph under its Keras name: a node of that name, or, for a folded batch
    /// norm, the doc string of the convolution that absorbed it; and every layer's output tensor carries its name
    /// (a convolution with a folded batch norm writes the batch norm's output, named after it).
    /// </summary>
    static void NamesAreKeras(Model model, ModelProto proto)
    {
        var nodes = proto.Graph.Node.Select(n => n.Name).ToHashSet();
        Assert.Equal(proto.Graph.Node.Count, nodes.Count); // unique
        var tensors = proto.Graph.Node.SelectMany(n => n.Output).ToHashSet();
        foreach (var l in model.Layers.Where(l => l is not (InputLayer or DropoutLayer)))
        {
            if (l is BatchNormLayer bn) Assert.Contains(proto.Graph.Node, n => n.DocString.Contains($"+ {bn.Name} folded") || n.Name == bn.Name);
            else Assert.Contains(l.Name, nodes);
            bool foldedInto = model.Layers.Count(r => r.Inputs.Contains(l)) == 1 && model.Layers.Single(r => r.Inputs.Contains(l)) is BatchNormLayer;
            if (!foldedInto) Assert.Contains(l.Name, tensors);
        }
    }

    static string[] Dims(ValueInfoProto v) =>
        v.Type.TensorType.Shape.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam ? d.DimParam
            : d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? $"{d.DimValue}" : "?").ToArray();

    /// <summary>
    /// One export with symbolic batch and size serves every input: 71 x 71 one image, 74 x 74 three images (74 puts
    /// block2's pool on 34 x 34, where 'same' pads only after: auto_pad SAME_UPPER must do the same). Probabilities,
    /// the softmax included.
    /// </summary>
    [Fact]
    public void DynamicSizeAndBatchRunAt71And74()
    {
        byte[] bytes;
        using (var at71 = XceptionModel.Load(KerasReference.Weights, "cpu", 71))
            bytes = OnnxExport.ToBytes(at71.Model, new OnnxExportOptions { DynamicSize = true, Config = at71.Config });
        var proto = ModelProto.Parser.ParseFrom(bytes);
        Assert.Equal(["batch", "height", "width", "3"], Dims(proto.Graph.Input.Single()));
        Assert.Contains(proto.Graph.Node, n => n.OpType == "Softmax" && n.Output.Single() == "predictions");

        foreach (var (size, count) in new[] { (71, 1), (74, 3) })
        {
            var keras = Keras($"input_{size}.npy");
            int per = size * size * 3;
            var x = keras.Data.Take(Math.Min(count, KerasReference.Batch) * per).Concat(Random(Math.Max(0, count - KerasReference.Batch) * per, size)).ToArray();
            var (y, shape) = OnnxRun.Run(bytes, x, [count, size, size, 3]);
            Assert.Equal([count, KerasReference.Classes], shape);
            using var own = XceptionModel.Load(KerasReference.Weights, "cpu", size);
            Agrees($"ONNX Runtime probabilities at {size}x{size}, batch {count}, against the project's", y, own.Probabilities(x, count), OwnTolerance);
            int k = Math.Min(count, KerasReference.Batch) * KerasReference.Classes;
            Agrees($"ONNX Runtime probabilities at {size}x{size} against Keras'", y[..k], Keras($"probs_{size}.npy").Data[..k], KerasTolerance);
        }
    }

    /// <summary>Keras' no-top model with average or max pooling (a _notop file): the features Keras computes.</summary>
    [Theory]
    [InlineData(GlobalPooling.Avg)]
    [InlineData(GlobalPooling.Max)]
    public void NoTopWithPoolingGivesKerasFeatures(GlobalPooling pooling)
    {
        var dir = KerasFeaturesTests.Folder();
        var x = Npy.Read(Path.Combine(dir, "input_71.npy"));
        var want = Npy.Read(Path.Combine(dir, $"features_{pooling.ToString().ToLowerInvariant()}_71.npy"));
        using var own = XceptionModel.LoadFeatures(Path.Combine(dir, "xception_notop.h5"), "cpu", 71, pooling);
        var bytes = OnnxExport.ToBytes(own.Model, new OnnxExportOptions { Batch = KerasReference.Batch });
        var proto = ModelProto.Parser.ParseFrom(bytes);
        string name = pooling == GlobalPooling.Avg ? "avg_pool" : "max_pool";
        Assert.Equal(name, proto.Graph.Output.Single().Name);
        Assert.Equal([$"{KerasReference.Batch}", "2048"], Dims(proto.Graph.Output.Single()));
        var (y, shape) = OnnxRun.Run(bytes, x.Data, x.Shape);
        Assert.Equal([KerasReference.Batch, 2048], shape);
        Agrees($"{name} features against Keras'", y, want.Data, KerasTolerance);
        Agrees($"{name} features against the project's", y, own.Features(x.Data, x.Shape[0]), OwnTolerance);
    }

    /// <summary>The configurations the builder makes beyond Keras' model, each exported from random weights (batch-norm statistics away from their defaults, so folding matters).</summary>
    public static TheoryData<string> Variants => new(
        "mini", "mini-dynamic", "mini-probabilities", "no-residual", "relu-between", "elu-between", "segments-8",
        "no-top-max", "no-top-maps", "no-top-maps-dynamic", "dropout", "opset-13", "opset-21", "full-random");

    static (XceptionConfig Config, OnnxExportOptions Options) Variant(string name)
    {
        var mini = XceptionConfig.Mini(imageSize: 35, classes: 7) with { MiddleBlocks = 2 };
        var logits = new OnnxExportOptions { Logits = true };
        return name switch
        {
            "mini" => (XceptionConfig.Mini(), logits with { Batch = 2 }),
            "mini-dynamic" => (mini, logits with { DynamicSize = true }),
            "mini-probabilities" => (mini, new OnnxExportOptions()),
            "no-residual" => (mini with { Residual = false }, logits),
            "relu-between" => (mini with { SeparableActivation = ActivationKind.Relu }, logits),
            "elu-between" => (mini with { SeparableActivation = ActivationKind.Elu }, logits),
            "segments-8" => (mini with { Segments = 8 }, logits),
            "no-top-max" => (mini with { IncludeTop = false, Pooling = GlobalPooling.Max }, logits),
            "no-top-maps" => (mini with { IncludeTop = false, Pooling = GlobalPooling.None }, logits),
            "no-top-maps-dynamic" => (mini with { IncludeTop = false, Pooling = GlobalPooling.None }, logits with { DynamicSize = true }),
            "dropout" => (mini with { Dropout = 0.5f }, logits),
            "opset-13" => (mini, logits with { Opset = 13 }),
            "opset-21" => (mini, logits with { Opset = 21 }),
            "full-random" => (new XceptionConfig { ImageSize = 71, Classes = 5 }, logits with { Batch = 2 }),
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
        };
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void VariantExportsRunAsTheProjectDoes(string name)
    {
        var (config, options) = Variant(name);
        using var own = XceptionModel.Create(config, "cpu");
        ModelFixtures.Randomize(own.Model, seed: 5);
        var bytes = OnnxExport.ToBytes(own.Model, options with { Config = config });
        var proto = ModelProto.Parser.ParseFrom(bytes);
        NamesAreKeras(own.Model, proto);
        Assert.Equal(options.Opset, proto.OpsetImport.Single().Version);

        int count = options.Batch ?? 3, s = config.ImageSize;
        var x = Random(count * s * s * config.InputChannels, seed: 9);
        var (y, shape) = OnnxRun.Run(bytes, x, [count, s, s, config.InputChannels]);
        float[] want = config.IncludeTop
            ? options.Logits ? own.Logits(x, count) : own.Probabilities(x, count)
            : own.Logits(x, count); // without the classifier: the pooled features or the NHWC maps
        Assert.Equal([count, .. own.Model.Output.OutputShape], shape);
        Agrees($"{name}: ONNX Runtime against the project", y, want, OwnTolerance);

        if (options.DynamicSize)
        {
            // Another size through the same file: 40 pads differently from 35 at every stride.
            int s2 = s + 5;
            using var other = XceptionModel.Create(config with { ImageSize = s2 }, "cpu");
            CopyWeights(own.Model, other.Model);
            var x2 = Random(2 * s2 * s2 * config.InputChannels, seed: 10);
            var (y2, _) = OnnxRun.Run(bytes, x2, [2, s2, s2, config.InputChannels]);
            Agrees($"{name} at {s2}x{s2}: ONNX Runtime against the project", y2, other.Logits(x2, 2), OwnTolerance);
        }
    }

    static void CopyWeights(Model from, Model to)
    {
        from.SyncToHost();
        foreach (var (a, b) in from.Parameters.Zip(to.Parameters)) b.Set(a.Host);
    }

    [Theory]
    [InlineData(12)]
    [InlineData(22)]
    public void AnOpsetOutOfRangeIsOneClearError(int opset)
    {
        using var model = XceptionBuilder.Build(XceptionConfig.Mini());
        var e = Assert.Throws<OnnxExportException>(() => OnnxExport.ToBytes(model, new OnnxExportOptions { Opset = opset }));
        Assert.Equal($"ONNX opset {opset} is not supported: expected 13 to 21 (default 17)", e.Message);
    }

    [Fact]
    public void ALayerWithoutAnExportIsRefusedByName()
    {
        var input = new InputLayer("input_1", [8, 8, 3]);
        using var model = new Model("odd", [input, new Odd("odd_layer", input)]);
        var e = Assert.Throws<OnnxExportException>(() => OnnxExport.ToBytes(model));
        Assert.StartsWith("layer odd_layer (Oddity) has no ONNX export", e.Message);
    }

    sealed class Odd(string name, Layer input) : Layer(name, input)
    {
        public override string KerasType => "Oddity";
        public override int[] InferShape(IReadOnlyList<int[]> inputs) => inputs[0];
        public override void Forward(LayerContext ctx) => throw new NotSupportedException();
        public override void Backward(LayerContext ctx) => throw new NotSupportedException();
    }
}
