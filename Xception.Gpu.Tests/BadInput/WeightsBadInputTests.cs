using System.Buffers.Binary;
using System.Text.Json.Nodes;
using Xception.Gpu.Graph;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Tests.IO;
using Xception.Gpu.Training;
using Xunit;

namespace Xception.Gpu.Tests.BadInput;

/// <summary>
/// Hostile weight files, each built here: every one is refused with one exact line that names the file and
/// says what is wrong, and the model it was loaded into keeps every parameter it had.
/// </summary>
public sealed class WeightsBadInputTests : IDisposable
{
    static readonly XceptionConfig Small = XceptionConfig.Mini(32, 3, 4);

    readonly TempDir tmp = new();
    readonly Model model = XceptionBuilder.Build(Small);
    readonly float[][] before;

    public WeightsBadInputTests()
    {
        model.Initialize(7);
        before = model.Parameters.Select(p => p.Host.ToArray()).ToArray();
    }

    public void Dispose()
    {
        model.Dispose();
        tmp.Dispose();
    }

    void Unchanged()
    {
        var now = model.Parameters.Select(p => p.Host).ToArray();
        for (int i = 0; i < now.Length; i++) Assert.Equal(before[i], now[i]);
    }

    /// <summary>Loading <paramref name="path"/> fails with exactly <paramref name="message"/>, on one line, and changes nothing.</summary>
    WeightsException Refused(string path, string message)
    {
        var e = Assert.Throws<WeightsException>(() => ModelWeights.Load(model, path));
        Assert.Equal(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Unchanged();
        return e;
    }

    /// <summary>A valid checkpoint of another model of the same configuration, as the bytes of its file.</summary>
    byte[] ValidCheckpoint(IReadOnlyDictionary<string, string>? meta = null, IEnumerable<NamedTensor>? extra = null)
    {
        using var other = XceptionBuilder.Build(Small);
        other.Initialize(8);
        var path = tmp["valid.safetensors"];
        ModelWeights.Save(other, Small, path, meta, extra);
        return File.ReadAllBytes(path);
    }

    static string NotValid(string path, string what) => $"'{path}' is not a valid safetensors checkpoint: {what}";

    static byte[] Floats(int n) => new byte[4 * n];

    // ---- safetensors byte ranges ----

    [Fact]
    public void OverlappingRangesAreRefused()
    {
        var p = tmp.Write("overlap.safetensors", WeightFiles.SafeTensors(
            """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""", Floats(6)));
        Refused(p, NotValid(p, "tensor 'b' (bytes 8..24) overlaps tensor 'a' (bytes 0..16)"));

        var same = tmp.Write("same.safetensors", WeightFiles.SafeTensors(
            """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", Floats(4)));
        Refused(same, NotValid(same, "tensor 'b' (bytes 0..16) overlaps tensor 'a' (bytes 0..16)"));
    }

    [Fact]
    public void RangesBeforeOrOutsideTheDataSectionAreRefused()
    {
        var neg = tmp.Write("negative.safetensors", WeightFiles.SafeTensors(
            """{"a":{"dtype":"F32","shape":[4],"data_offsets":[-8,8]}}""", Floats(2)));
        Refused(neg, NotValid(neg, "tensor 'a': data_offsets is [-8,8], expected [begin, end], two byte offsets from 0"));

        var past = tmp.Write("past.safetensors", WeightFiles.SafeTensors(
            """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", Floats(2)));
        Refused(past, NotValid(past, "tensor 'a' has data_offsets [0, 16], outside the data section of 8 bytes (truncated or damaged?)"));

        var reversed = tmp.Write("reversed.safetensors", WeightFiles.SafeTensors(
            """{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}""", Floats(2)));
        Refused(reversed, NotValid(reversed, "tensor 'a' has data_offsets [8, 0], outside the data section of 8 bytes (truncated or damaged?)"));
    }

    [Fact]
    public void TheRangesMustFillTheDataSectionExactly()
    {
        var gap = tmp.Write("gap.safetensors", WeightFiles.SafeTensors(
            """{"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""", Floats(6)));
        Refused(gap, NotValid(gap, "bytes 0..8 of the data section belong to no tensor (expected the tensors to follow each other)"));

        var tail = tmp.Write("tail.safetensors", WeightFiles.SafeTensors(
            """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", Floats(5)));
        Refused(tail, NotValid(tail, "the tensors end at byte 16 of the data section, which has 20 (expected them to fill it exactly)"));
    }

    [Fact]
    public void ByteCountMustMatchTheShape()
    {
        var p = tmp.Write("count.safetensors", WeightFiles.SafeTensors(
            """{"a":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}}""", Floats(4)));
        Refused(p, NotValid(p, "tensor 'a' has 16 bytes (data_offsets [0, 16]), but shape (5) of F32 needs 20"));

        // A product that overflows 64 bits must not wrap onto the byte count.
        var big = tmp.Write("overflow.safetensors", WeightFiles.SafeTensors(
            """{"a":{"dtype":"F32","shape":[2147483647,2147483647,2147483647,2147483647,4],"data_offsets":[0,16]}}""", Floats(4)));
        Refused(big, NotValid(big, "tensor 'a' has shape (2147483647, 2147483647, 2147483647, 2147483647, 4), more values than the 16 bytes of data can hold"));
    }

    [Fact]
    public void HeaderLengthIsCappedAndMustLieInTheFile()
    {
        var huge = WeightFiles.SafeTensors("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", Floats(1));
        BinaryPrimitives.WriteUInt64LittleEndian(huge, 200_000_000);
        var p = tmp.Write("huge-header.safetensors", huge);
        Refused(p, NotValid(p, "its header length field says 200000000 bytes, more than the format's limit of 100000000 (damaged, or not a checkpoint)"));

        var cut = WeightFiles.SafeTensors("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", Floats(1));
        BinaryPrimitives.WriteUInt64LittleEndian(cut, 1000);
        var c = tmp.Write("cut-header.safetensors", cut);
        Refused(c, NotValid(c, $"its header length field says 1000 bytes, but the file has only {cut.Length - 8} after it (truncated?)"));
    }

    // ---- malformed header entries ----

    [Theory]
    [InlineData("""{"a":5}""", "tensor 'a' is a number, expected an object with dtype, shape and data_offsets")]
    [InlineData("""{"a":{"shape":[1],"data_offsets":[0,4]}}""", "tensor 'a' has no dtype")]
    [InlineData("""{"a":{"dtype":7,"shape":[1],"data_offsets":[0,4]}}""", "tensor 'a': dtype is a number, expected a string such as \"F32\"")]
    [InlineData("""{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}""", "tensor 'a' is F16; only F32 is supported")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}""", "tensor 'a': data_offsets is [4], expected [begin, end], two byte offsets from 0")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}}""", "tensor 'a': data_offsets is [\"0\",\"4\"], expected [begin, end], two byte offsets from 0")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", "tensor 'a': shape [-1] holds -1, expected sizes from 0 to 2147483647")]
    [InlineData("""{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}""", "tensor 'a': shape [\"1\"] holds \"1\", expected sizes from 0 to 2147483647")]
    [InlineData("""{"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}""", "tensor 'a': shape is a number, expected an array of sizes")]
    [InlineData("""{"__metadata__":"x","a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "__metadata__ is a string, expected an object of strings")]
    [InlineData("""{"__metadata__":{"format":1},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "__metadata__ 'format' is a number, expected a string")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "its header names 'a' twice")]
    [InlineData("""{"__metadata__":{"format":"a","format":"b"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "__metadata__ names 'format' twice")]
    [InlineData("""{"a\nb":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a\nb":{}}""", "its header names 'a b' twice")]
    public void MalformedEntriesAreOneLineEach(string header, string what)
    {
        var p = tmp.Write("entry.safetensors", WeightFiles.SafeTensors(header, Floats(1)));
        Refused(p, NotValid(p, what));
        // The configuration is read from the same header: refused the same way.
        var e = Assert.Throws<WeightsException>(() => ModelWeights.ConfigOf(p, new XceptionConfig()));
        Assert.Equal(NotValid(p, what), e.Message);
    }

    [Fact]
    public void HeaderThatIsNotJsonIsRefused()
    {
        var p = tmp.Write("text.safetensors", WeightFiles.SafeTensors("{\"a\": nope}", Floats(1)));
        var e = Assert.Throws<WeightsException>(() => ModelWeights.Load(model, p));
        Assert.StartsWith(NotValid(p, "its header is not valid JSON ("), e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Unchanged();
    }

    // ---- the stored configuration ----

    [Theory]
    [InlineData("not json at all", "$")]
    [InlineData("""{"Pooling":"Huge"}""", "$.Pooling")]
    [InlineData("""{"Pooling":7}""", "$.Pooling")]
    [InlineData("""{"Classes":"ten"}""", "$.Classes")]
    [InlineData("""{"Classes":4,"Classes":5}""", "Classes")]
    public void BadConfigurationJsonNamesTheFileAndTheProperty(string config, string property)
    {
        var p = tmp.Write("config.safetensors", WeightFiles.Edit(ValidCheckpoint(), h => WeightFiles.Meta(h)["config"] = config));
        var e = Assert.Throws<WeightsException>(() => ModelWeights.ConfigOf(p, new XceptionConfig()));
        Assert.StartsWith($"'{p}' holds a bad model configuration (metadata 'config'): the model configuration is not valid JSON for XceptionConfig: ", e.Message);
        Assert.Contains(property, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void ConfigurationOutOfRangeOrOfAnotherModelIsRefused()
    {
        var zero = tmp.Write("zero.safetensors", WeightFiles.Edit(ValidCheckpoint(), h => WeightFiles.Meta(h)["config"] = (Small with { Classes = 0 }).ToJson()));
        var e = Assert.Throws<WeightsException>(() => ModelWeights.ConfigOf(zero, new XceptionConfig()));
        Assert.Equal($"'{zero}' holds a bad model configuration (metadata 'config'): invalid Xception configuration: classes must be at least 1, got 0", e.Message);

        // A configuration four times as wide as the weights: refused before anyone builds that model.
        var wide = tmp.Write("wide.safetensors", WeightFiles.Edit(ValidCheckpoint(), h => WeightFiles.Meta(h)["config"] = (Small with { Width = 1 }).ToJson()));
        e = Assert.Throws<WeightsException>(() => ModelWeights.ConfigOf(wide, new XceptionConfig()));
        Assert.Equal($"'{wide}': its stored configuration does not match its weights: it implies 'block1_conv1/kernel' of shape (3, 3, 3, 32), the file has (3, 3, 3, 8)", e.Message);

        var fewer = tmp.Write("fewer.safetensors", WeightFiles.Edit(ValidCheckpoint(), h => WeightFiles.Meta(h)["config"] = (Small with { MiddleBlocks = 2 }).ToJson()));
        e = Assert.Throws<WeightsException>(() => ModelWeights.ConfigOf(fewer, new XceptionConfig()));
        Assert.Equal($"'{fewer}': its stored configuration does not match its weights: it implies 'block8_sepconv2/pointwise_kernel' of shape (1, 1, 384, 512), the file has (1, 1, 184, 184)", e.Message);
        var more = tmp.Write("more.safetensors", WeightFiles.Edit(ValidCheckpoint(), h => WeightFiles.Meta(h)["config"] = (Small with { MiddleBlocks = 9 }).ToJson()));
        e = Assert.Throws<WeightsException>(() => ModelWeights.ConfigOf(more, new XceptionConfig()));
        Assert.Equal($"'{more}': its stored configuration does not match its weights: it implies 'block15_sepconv2/pointwise_kernel' of shape (1, 1, 384, 512), the file has no such tensor", e.Message);
    }

    // ---- training state and optimizer state ----

    (Model Model, OptimizerState Optimizer, float[] Velocity) Bound()
    {
        model.Bind(Backends.Get(Backends.Cpu));
        var opt = new OptimizerState(model, new OptimizerSettings());
        return (model, opt, opt.Export().First().Data);
    }

    byte[] CheckpointWithState(string state)
    {
        var (_, opt, _) = Bound();
        return ValidCheckpoint(new Dictionary<string, string> { ["train_state"] = state }, opt.Export());
    }

    [Theory]
    [InlineData("not json", "'{0}': its training state (train_state) is not valid: ")]
    [InlineData("""{"Position":{"Epoch":"one"}}""", "'{0}': its training state (train_state) is not valid: ")]
    [InlineData("null", "'{0}': its training state (train_state) is not valid: it is empty (JSON null)")]
    [InlineData("""{"Position":{"Epoch":0,"Batch":0,"Step":1,"Samples":8},"Running":[0,0,0],"Batch":8,"Seed":0,"Optimizer":"{}","Data":"d"}""",
        "'{0}': its training state (train_state) is not valid: Running holds 3 values, expected 6 (the running metrics)")]
    [InlineData("""{"Running":[0,0,0,0,0,0],"Batch":8,"Seed":0,"Optimizer":"{}","Data":"d"}""",
        "'{0}': its training state (train_state) is not valid: it has no Position")]
    [InlineData("""{"Position":{"Epoch":0,"Batch":0,"Step":1,"Samples":8},"Running":[0,0,0,0,0,0],"Batch":0,"Seed":0,"Optimizer":"{}","Data":"d"}""",
        "'{0}': its training state (train_state) is not valid: its batch is 0, expected at least 1")]
    public void BadTrainingStateIsRefused(string state, string message)
    {
        var p = tmp.Write("state.safetensors", CheckpointWithState(state));
        var (m, opt, velocity) = Bound();
        using (opt)
        {
            var e = Assert.Throws<WeightsException>(() => Checkpoints.Load(p, m, opt));
            Assert.StartsWith(string.Format(message, p), e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Unchanged();
            Assert.Equal(velocity, opt.Export().First().Data);
        }
    }

    [Fact]
    public void OptimizerStateOfTheWrongSizeNamesTheTensorAndBothSizes()
    {
        var (_, opt, velocity) = Bound();
        var exported = opt.Export().ToList();
        var first = exported[0]; // optimizer/block1_conv1/kernel/velocity, (3, 3, 3, 8)
        exported[0] = first with { Shape = [3, 3, 3], Data = new float[27] };
        var state = """{"Position":{"Epoch":0,"Batch":0,"Step":1,"Samples":8},"Running":[0,0,0,0,0,0],"Batch":8,"Seed":0,"Optimizer":"{}","Data":"d"}""";
        var p = tmp.Write("opt.safetensors", ValidCheckpoint(new Dictionary<string, string> { ["train_state"] = state }, exported));
        using (opt)
        {
            var e = Assert.Throws<WeightsException>(() => Checkpoints.Load(p, model, opt));
            Assert.Equal($"checkpoint '{p}': optimizer state '{first.Name}' has shape (3, 3, 3), 27 values; expected (3, 3, 3, 8), 216 values", e.Message);
            Unchanged(); // the weights were fine, but nothing is set before the optimizer state was checked too
            Assert.Equal(velocity, opt.Export().First().Data);
        }
    }

    // ---- what the path is ----

    [Fact]
    public void ADirectoryOrAFileOfNeitherFormatIsNamedForWhatItIs()
    {
        var dir = tmp["weights.safetensors"];
        Directory.CreateDirectory(dir);
        var expected = $"'{dir}' is a directory; expected a weights file (Keras .h5 or an Xception.Gpu checkpoint .safetensors)";
        Refused(dir, expected);
        Assert.Equal(expected, Assert.Throws<WeightsException>(() => ModelWeights.ConfigOf(dir, new XceptionConfig())).Message);

        var text = tmp.Write("weights.h5", "not HDF5, not safetensors either"u8.ToArray());
        var neither = $"'{text}' is neither Keras HDF5 weights (no HDF5 signature) nor an Xception.Gpu checkpoint (no safetensors header); expected a .h5 file or a .safetensors checkpoint";
        Refused(text, neither);
        Assert.Equal(neither, Assert.Throws<WeightsException>(() => ModelWeights.ConfigOf(text, new XceptionConfig())).Message);

        var empty = tmp.Write("empty.h5", []);
        Refused(empty, $"'{empty}' is neither Keras HDF5 weights (no HDF5 signature) nor an Xception.Gpu checkpoint (no safetensors header); expected a .h5 file or a .safetensors checkpoint");
    }

    // ---- HDF5 dimensions beyond int ----

    [Fact]
    public void Hdf5DimensionBeyondIntIsNotCastOntoTheExpectedOne()
    {
        var src = tmp["mini.h5"];
        using (var other = XceptionBuilder.Build(Small)) { other.Initialize(8); ModelWeights.Save(other, Small, src); }
        var bytes = File.ReadAllBytes(src);
        var at = WeightFiles.FindDims(bytes, 3, 3, 3, 8); // block1_conv1/kernel's dataspace
        Assert.Single(at);
        // 2^32 + 8: cast to int it was 8, the expected size, and passed.
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at[0] + 24), (1UL << 32) + 8);
        var p = tmp.Write("wide-dim.h5", bytes);
        Refused(p, $"block1_conv1/kernel: expected shape (3, 3, 3, 8), found (3, 3, 3, 4294967304) in '{p}'");
        var e = Assert.Throws<WeightsException>(() => ModelWeights.ConfigOf(p, new XceptionConfig()));
        Assert.Equal($"'{p}': its stored configuration does not match its weights: it implies 'block1_conv1/kernel' of shape (3, 3, 3, 8), the file has (3, 3, 3, 4294967304)", e.Message);
    }

    [Fact]
    public void KerasClassCountBeyondIntIsRefused()
    {
        var src = tmp["keras.h5"];
        using (var other = XceptionBuilder.Build(Small)) { other.Initialize(8); KerasH5.Save(other, src); } // no stored configuration, as Keras writes
        var bytes = File.ReadAllBytes(src);
        var at = WeightFiles.FindDims(bytes, 512, 4); // predictions/kernel
        Assert.Single(at);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at[0] + 8), 1UL << 33);
        var p = tmp.Write("many-classes.h5", bytes);
        var e = Assert.Throws<WeightsException>(() => ModelWeights.ConfigOf(p, new XceptionConfig()));
        Assert.Equal($"'{p}': predictions/kernel has shape (512, 8589934592); expected (inputs, classes) with 1 to 2147483647 classes", e.Message);
    }
}
