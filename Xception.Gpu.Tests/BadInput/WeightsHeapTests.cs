using System.Buffers.Binary;
using System.Diagnostics;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.BadInput;

/// <summary>
/// A damaged size in an HDF5 global heap collection (where the variable-length strings of an .h5 live):
/// PureHDF allocates what the size says before it notices, so these are refused before it opens the file,
/// with one line, quickly and without allocating much more than the file. Valid files still load.
/// </summary>
public sealed class WeightsHeapTests(ITestOutputHelper log) : IDisposable
{
    static readonly XceptionConfig Small = XceptionConfig.Mini(32, 3, 4);

    readonly TempDir tmp = new();

    public void Dispose() => tmp.Dispose();

    /// <summary>A valid small-model .h5 as this project writes it (layer_names, weight_names and the configuration are heap strings).</summary>
    byte[] SmallH5()
    {
        var path = tmp["valid.h5"];
        using (var m = XceptionBuilder.Build(Small)) { m.Initialize(8); ModelWeights.Save(m, Small, path); }
        return File.ReadAllBytes(path);
    }

    /// <summary>The offset of the first global heap collection: "GCOL", version 1, three reserved zero bytes.</summary>
    static int FirstCollection(byte[] file)
    {
        var span = file.AsSpan();
        for (int i = span.IndexOf("GCOL"u8); i >= 0; i = span[(i + 1)..].IndexOf("GCOL"u8) is var n and >= 0 ? i + 1 + n : -1)
            if (span.Slice(i + 4, 4).SequenceEqual((ReadOnlySpan<byte>)[1, 0, 0, 0])) return i;
        throw new Xunit.Sdk.XunitException("no global heap collection in the file");
    }

    /// <summary>Both readers of an .h5 refuse <paramref name="path"/> with <paramref name="message"/>, fast and without allocating what the file claims.</summary>
    void Refused(string path, string message, long fileBytes)
    {
        using var model = XceptionBuilder.Build(Small);
        foreach (var read in new Action[] { () => ModelWeights.ConfigOf(path, new XceptionConfig()), () => ModelWeights.Load(model, path) })
        {
            var clock = Stopwatch.StartNew();
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<WeightsException>(read);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            log.WriteLine($"{Path.GetFileName(path)}: refused in {clock.ElapsedMilliseconds} ms, {allocated:N0} bytes allocated ({fileBytes:N0}-byte file)");
            Assert.Equal(message, e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Assert.True(allocated < 4 * fileBytes, $"allocated {allocated:N0} bytes for a {fileBytes:N0}-byte file");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        }
    }

    [Theory]
    [InlineData(0x7000_0000UL)] // 1.75 GiB: without the check PureHDF allocated all of it, then failed
    [InlineData(1UL << 31)]
    [InlineData(1UL << 62)]
    public void ObjectLargerThanItsCollectionIsRefusedBeforeAllocating(ulong objectSize)
    {
        var bytes = SmallH5();
        int at = FirstCollection(bytes);
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at + 8));
        // The first object's header follows the 16-byte collection header; its size is its last 8 bytes.
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at + 16 + 8), objectSize);
        var p = tmp.Write("big-object.h5", bytes);
        Refused(p, $"'{p}' is damaged: its HDF5 global heap collection at byte {at} declares an object of {objectSize} bytes in a collection of {size} bytes (expected at most the {size - 32} bytes left in the collection)", bytes.Length);
    }

    /// <summary>
    /// The same damage in a collection whose version or reserved bytes were changed too: PureHDF still decodes its
    /// objects (it checks the version afterwards), so the scan finds it through the file's reference to it.
    /// </summary>
    [Theory]
    [InlineData(0, 0)]
    [InlineData(2, 0)]
    [InlineData(255, 0)]
    [InlineData(1, 7)] // version 1, a reserved byte set
    public void ACollectionWithAnotherVersionByteIsCheckedToo(byte version, byte reserved)
    {
        var bytes = SmallH5();
        int at = FirstCollection(bytes);
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at + 8));
        bytes[at + 4] = version;
        bytes[at + 5] = reserved;
        const ulong objectSize = 0x7000_0000UL; // 1.75 GiB that PureHDF would allocate
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at + 16 + 8), objectSize);
        var p = tmp.Write("other-version.h5", bytes);
        Refused(p, $"'{p}' is damaged: its HDF5 global heap collection at byte {at} declares an object of {objectSize} bytes in a collection of {size} bytes (expected at most the {size - 32} bytes left in the collection)", bytes.Length);
    }

    /// <summary>Weights whose bytes spell "GCOL" are not a collection: nothing in the file points at them, and the file loads.</summary>
    [Fact]
    public void WeightBytesThatSpellTheSignatureAreNotRefused()
    {
        var path = tmp["gcol-in-weights.h5"];
        byte[] fake = [.. "GCOL"u8, 0, 0, 0, 0, 0, 0, 0, 0x40];
        using (var m = XceptionBuilder.Build(Small))
        {
            m.Initialize(8);
            // "GCOL", a version byte of 0 and a size far past the end of the file, were it read as a collection.
            var kernel = m["predictions"].Parameters.First(p => p.Name == "kernel").Host;
            for (int i = 0; i < 3; i++) kernel[i] = BitConverter.ToSingle(fake, 4 * i);
            ModelWeights.Save(m, Small, path);
        }
        Assert.True(File.ReadAllBytes(path).AsSpan().IndexOf(fake) >= 0, "the weights' bytes are not in the file as written");
        using var model = XceptionBuilder.Build(Small);
        ModelWeights.Load(model, path);
        Assert.Equal(BitConverter.ToSingle(fake, 0), model["predictions"].Parameters.First(p => p.Name == "kernel").Host[0]);
    }

    [Theory]
    [InlineData(1UL << 62)]
    [InlineData(16UL)] // below HDF5's minimum, which PureHDF checks only after decoding the objects
    public void CollectionSizeOutsideTheFileOrBelowTheMinimumIsRefused(ulong collectionSize)
    {
        var bytes = SmallH5();
        int at = FirstCollection(bytes);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at + 8), collectionSize);
        var p = tmp.Write("big-collection.h5", bytes);
        Refused(p, $"'{p}' is damaged: its HDF5 global heap collection at byte {at} declares a size of {collectionSize} bytes (expected at least 4096 and at most the {bytes.Length - at} bytes from there to the end of the file)", bytes.Length);
    }

    [Fact]
    public void ValidSmallModelFilesStillLoad()
    {
        var withConfig = tmp.Write("small.h5", SmallH5());
        var keras = tmp["keras.h5"]; // no stored configuration, as Keras writes it
        using (var m = XceptionBuilder.Build(Small)) { m.Initialize(9); KerasH5.Save(m, keras); }
        foreach (var p in new[] { withConfig, keras })
        {
            using var model = XceptionBuilder.Build(Small);
            Assert.Equal(Small.Classes, ModelWeights.ConfigOf(p, Small).Classes);
            ModelWeights.Load(model, p);
        }
    }

    /// <summary>The full model's .h5 (~88 MB) loads, and the scan of it is timed.</summary>
    [Fact]
    public void TheFullModelFileStillLoadsAndIsScannedQuickly()
    {
        var p = tmp["full.h5"];
        var config = new XceptionConfig();
        using (var m = XceptionBuilder.Build(config)) { m.Initialize(1); KerasH5.Save(m, p); }
        long bytes = new FileInfo(p).Length;
        Hdf5HeapCheck.Check(p); // once to warm the page cache and the JIT
        var clock = Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Hdf5HeapCheck.Check(p);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        log.WriteLine($"scan of {bytes:N0} bytes: {clock.Elapsed.TotalMilliseconds:F1} ms, {allocated:N0} bytes allocated");
        Assert.True(allocated < 4 << 20, $"the scan allocated {allocated:N0} bytes");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"the scan took {clock.Elapsed}");
        using var model = XceptionBuilder.Build(config);
        ModelWeights.Load(model, p);
    }
}
