using Xception.Gpu.Imaging;
using Xception.Gpu.Data;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Data;

/// <summary>
/// The background batch loader: contents, determinism under any thread count and timing, resuming at a batch,
/// skipping or refusing undecodable images, bounded read-ahead, cancellation and shutdown.
/// </summary>
public class BatchLoaderTests
{
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    static List<Batch> All(IDataSource source, IReadOnlyList<int> order, BatchLoaderOptions o)
    {
        using var loader = new BatchLoader(source, order, o);
        return loader.ReadAll(Ct).ToList();
    }

    static void SameBatches(IReadOnlyList<Batch> want, IReadOnlyList<Batch> got)
    {
        Assert.Equal(want.Count, got.Count);
        for (int b = 0; b < want.Count; b++)
        {
            Assert.Equal((want[b].Index, want[b].Count), (got[b].Index, got[b].Count));
            Assert.Equal(want[b].Indices, got[b].Indices);
            Assert.Equal(want[b].Labels, got[b].Labels);
            Assert.Equal(want[b].Targets, got[b].Targets);
            // Bit-identical, not merely close.
            Assert.True(want[b].X.AsSpan().SequenceEqual(got[b].X), $"batch {b}: pixels differ");
        }
    }

    static IDataSource Gray(int n)
    {
        var dir = Directory.CreateTempSubdirectory("xception-data-");
        var labels = Enumerable.Range(0, n).Select(i => (byte)(i % 4)).ToArray();
        var (img, lbl) = DataFiles.Mnist(n, 7, 9, labels);
        File.WriteAllBytes(Path.Combine(dir.FullName, "i"), img);
        File.WriteAllBytes(Path.Combine(dir.FullName, "l"), lbl);
        var src = new IdxSource(Path.Combine(dir.FullName, "i"), Path.Combine(dir.FullName, "l"));
        dir.Delete(recursive: true);   // read into memory: the files are no longer needed
        return src;
    }

    [Theory]
    [InlineData("rgb", 3, true)]
    [InlineData("rgb", 1, true)]
    [InlineData("gray", 3, true)]
    [InlineData("gray", 1, false)]
    public void BatchesEqualSamplesPreparedOneByOne(string kind, int channels, bool augment)
    {
        IDataSource src = kind == "rgb" ? new SyntheticSource(23, size: 12, seed: 2) : Gray(23);
        var order = Split.Make(23, 0, seed: 1).EpochOrder(2);
        var o = new BatchLoaderOptions { BatchSize = 5, ImageSize = 10, Channels = channels, Augment = augment ? Augment.Default : null, Seed = 4, Epoch = 2, Workers = 3 };
        var batches = All(src, order, o);
        Assert.Equal([5, 5, 5, 5, 3], batches.Select(b => b.Count));
        Assert.Equal([0, 1, 2, 3, 4], batches.Select(b => b.Index));
        int per = 10 * 10 * channels;
        for (int b = 0; b < batches.Count; b++)
        {
            var batch = batches[b];
            Assert.Equal(order.Skip(5 * b).Take(5), batch.Indices);
            Assert.Equal(batch.Count * per, batch.X.Length);
            Assert.Null(batch.Targets);
            for (int j = 0; j < batch.Count; j++)
            {
                int i = batch.Indices[j];
                var image = src.Load(i);
                Assert.Equal(image.Label, batch.Labels[j]);
                var want = new float[per];
                SampleTransform.Prepare(image, 10, channels, o.Augment, 4, 2, i, want);
                Assert.True(want.AsSpan().SequenceEqual(batch.X.AsSpan(j * per, per)), $"sample {i} differs from its one-by-one preparation");
            }
        }
        if (kind == "gray" && channels == 3)
            for (int p = 0; p < batches[0].X.Length; p += 3)
                Assert.True(batches[0].X[p] == batches[0].X[p + 1] && batches[0].X[p] == batches[0].X[p + 2], "gray replicated to R, G, B");
    }

    [Fact]
    public void SameSizeImagesAreJustScaled()
    {
        using var dir = new TempDir();
        for (int i = 0; i < 5; i++) DataFiles.Png(dir, $"data/c{i % 2}/{i}.png", 6, 6, DataFiles.Pattern(6, 6, i));
        var src = new ImageFolderSource(dir["data"]);
        var batch = Assert.Single(All(src, [0, 1, 2, 3, 4], new BatchLoaderOptions { BatchSize = 8, ImageSize = 6 }));
        Assert.Equal(5, batch.Count);
        for (int j = 0; j < 5; j++)
        {
            var pixels = src.Load(j).Pixels;
            for (int p = 0; p < pixels.Length; p++) Assert.Equal(pixels[p] / 127.5f - 1f, batch.X[j * 108 + p]);
        }
        Assert.Equal([0, 0, 0, 1, 1], batch.Labels);
    }

    [Fact]
    public void IdenticalWhateverTheThreadsAndTiming()
    {
        var src = new SyntheticSource(40, size: 16, seed: 5);
        var order = Split.Make(40, 0.2, seed: 5).EpochOrder(1);
        var o = new BatchLoaderOptions { BatchSize = 6, ImageSize = 12, Augment = Augment.Default, Seed = 5, Epoch = 1 };
        var one = All(src, order, o with { Workers = 1, Prefetch = 1 });
        var many = All(new JitterSource(src), order, o with { Workers = 5, Prefetch = 4 });
        SameBatches(one, many);
        var again = All(new JitterSource(src), order, o with { Workers = 3, Prefetch = 2 });
        SameBatches(one, again);
        // Another epoch augments differently.
        Assert.NotEqual(one[0].X, All(src, order, o with { Epoch = 2 })[0].X);
    }

    [Fact]
    public void StartingAtBatchKIsTheTailOfTheEpoch()
    {
        var src = new SyntheticSource(30, size: 12, seed: 3);
        var order = Split.Make(30, 0, seed: 3).EpochOrder(7);
        var o = new BatchLoaderOptions { BatchSize = 4, ImageSize = 8, Augment = Augment.Default, Seed = 3, Epoch = 7 };
        var full = All(src, order, o);
        Assert.Equal(8, full.Count);
        using (var loader = new BatchLoader(src, order, o with { StartBatch = 3 }))
        {
            Assert.Equal(8, loader.BatchCount);
            SameBatches(full.Skip(3).ToList(), loader.ReadAll(Ct).ToList());
        }
        Assert.Empty(All(src, order, o with { StartBatch = 8 }));
        Assert.Equal("batch loader: start batch 9 is past the epoch's 8 batches",
            Assert.Throws<OpArgumentException>(() => new BatchLoader(src, order, o with { StartBatch = 9 })).Message);
    }

    [Fact]
    public void CorruptImagesAreSkippedAndCounted()
    {
        using var dir = new TempDir();
        for (int i = 0; i < 6; i++) DataFiles.Png(dir, $"data/c{i % 2}/{i}.png", 5, 4, DataFiles.Pattern(5, 4, i));
        var bad = dir.Write("data/c0/2b.png", "not a picture"u8.ToArray());
        var whole = File.ReadAllBytes(dir["data/c1/3.png"]);
        var cut = dir.Write("data/c1/3a.png", whole[..^12]);
        var src = new ImageFolderSource(dir["data"]);
        // c0: 0.png 2.png 2b.png 4.png; c1: 1.png 3.png 3a.png 5.png
        Assert.Equal(8, src.Count);
        int badIndex = Array.IndexOf(src.Files.ToArray(), bad), cutIndex = Array.IndexOf(src.Files.ToArray(), cut);
        Assert.Equal((2, 6), (badIndex, cutIndex));
        var order = Enumerable.Range(0, 8).ToArray();
        var o = new BatchLoaderOptions { BatchSize = 3, ImageSize = 4 };
        using (var loader = new BatchLoader(src, order, o))
        {
            var batches = loader.ReadAll(Ct).ToList();
            Assert.Equal([2, 3, 1], batches.Select(b => b.Count));
            Assert.Equal([0, 1], batches[0].Indices);
            Assert.Equal([7], batches[2].Indices);
            Assert.Equal(2 * 4 * 4 * 3, batches[0].X.Length);
            Assert.Equal(2, loader.Skipped);
            Assert.Equal([bad, cut], loader.SkippedFiles);
            // The kept samples are the ones a clean load gives.
            var want = new float[48];
            SampleTransform.Prepare(src.Load(1), 4, 3, null, 0, 0, 1, want);
            Assert.Equal(want, batches[0].X[48..]);
        }

        using (var strict = new BatchLoader(src, order, o with { Strict = true }))
        {
            var e = Assert.Throws<ImageException>(() => strict.Next(Ct));
            Assert.Contains($"'{bad}'", e.Message);
            Assert.Equal(bad, e.Path);
            Assert.Equal(3, strict.Next(Ct)!.Count);   // the loader goes on with the next batch
            Assert.Equal($"image file '{cut}' is a truncated PNG: it ends before the IEND chunk",
                Assert.Throws<ImageException>(() => strict.Next(Ct)).Message);
            Assert.Null(strict.Next(Ct));
        }
    }

    [Fact]
    public void MultiLabelTargets()
    {
        using var dir = new TempDir();
        for (int i = 0; i < 3; i++) DataFiles.Png(dir, $"{i}.png", 3, 3, DataFiles.Pattern(3, 3, i));
        var src = new ListFileSource(dir.Write("l.txt", "0.png 1 3\n1.png\n2.png 0\n"u8.ToArray()));
        var batch = Assert.Single(All(src, [2, 0, 1], new BatchLoaderOptions { BatchSize = 3, ImageSize = 3 }));
        Assert.Empty(batch.Labels);
        Assert.Equal([1, 0, 0, 0, /**/ 0, 1, 0, 1, /**/ 0, 0, 0, 0], batch.Targets!);
    }

    [Fact]
    public void BadLabelsAndIndicesAreErrors()
    {
        var src = new SyntheticSource(4, size: 8);
        using (var loader = new BatchLoader(new RelabelSource(src, 12), [0, 1], new BatchLoaderOptions { BatchSize = 2, ImageSize = 8 }))
            Assert.Equal($"sample 0 has label 12; expected 0 to 9 ({src.Description})", Assert.Throws<DataException>(() => loader.Next(Ct)).Message);
        Assert.Equal("batch loader: sample index 4 is outside the data set's 0..3",
            Assert.Throws<OpArgumentException>(() => new BatchLoader(src, [0, 4], new BatchLoaderOptions())).Message);
        Assert.Equal("batch loader: 2 channels; expected 1 or 3",
            Assert.Throws<OpArgumentException>(() => new BatchLoader(src, [0], new BatchLoaderOptions { Channels = 2 })).Message);
        using var empty = new BatchLoader(src, [], new BatchLoaderOptions());
        Assert.Equal(0, empty.BatchCount);
        Assert.Null(empty.Next(Ct));
    }

    [Fact]
    public void ReadsAheadABoundedNumberOfBatches()
    {
        var src = new WrappedSource(new SyntheticSource(100, size: 8));
        using var loader = new BatchLoader(src, Enumerable.Range(0, 100).ToArray(),
            new BatchLoaderOptions { BatchSize = 4, ImageSize = 8, Prefetch = 3, Workers = 2 });
        Assert.True(SpinWait.SpinUntil(() => src.Loads == 12, Patience), $"{src.Loads} loads; expected the 3 prefetched batches (12)");
        Thread.Sleep(100);
        Assert.Equal(12, src.Loads);   // nothing beyond the window while the consumer waits
        Assert.Equal(0, loader.Next(Ct)!.Index);
        Assert.True(SpinWait.SpinUntil(() => src.Loads == 16, Patience), $"{src.Loads} loads; expected one more batch (16)");
    }

    [Fact]
    public void CancelAndDisposeStopTheWorkers()
    {
        var gate = new GateSource(new SyntheticSource(1000, size: 8));
        var loader = new BatchLoader(gate, Enumerable.Range(0, 1000).ToArray(), new BatchLoaderOptions { BatchSize = 10, ImageSize = 8, Workers = 2 });
        using (var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(50)))
            Assert.ThrowsAny<OperationCanceledException>(() => loader.Next(cancel.Token));
        gate.Open();
        Assert.Equal(0, loader.Next(Ct)!.Index);   // a cancelled wait leaves the loader usable
        var dispose = new Thread(loader.Dispose);
        dispose.Start();
        Assert.True(dispose.Join(Patience), "Dispose did not return: a worker is stuck");
        int loads = gate.Loads;
        Thread.Sleep(100);
        Assert.Equal(loads, gate.Loads);   // no thread loads anything after Dispose
        Assert.True(loads < 1000);
        Assert.Throws<ObjectDisposedException>(() => loader.Next(Ct));
        loader.Dispose();   // twice is fine
    }
}
