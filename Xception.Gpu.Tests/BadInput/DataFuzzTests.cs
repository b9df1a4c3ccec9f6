using Xception.Gpu.Data;
using Xception.Gpu.IO;
using Xception.Gpu.Tests.Data;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.BadInput;

/// <summary>
/// Seeded mutation fuzzing (<see cref="Fuzz"/>) of the data parsers: each mutant is written to a temporary file
/// and opened, and every sample of a source that opens is loaded, so the lazy paths run too. Every outcome must
/// be a parse or the parser's own one-line error, within a bound of 8 times the valid files' bytes plus 128 KB
/// (file streams, the gzip window, the exception and its message).
/// </summary>
public class DataFuzzTests(ITestOutputHelper output)
{
    const int Cases = 800;
    const long Slack = 128 << 10;

    void Show(string parser, int cases, Fuzz.Report r, long bound) =>
        output.WriteLine($"{parser}: {cases} cases, {r.Parsed} parsed, {r.Refused} refused, slowest {r.Slowest.TotalMilliseconds:F1} ms, " +
            $"most allocated {r.MostAllocated:N0} bytes (bound {bound:N0})");

    [Fact]
    public void Npy()
    {
        using var dir = new TempDir();
        var values = Enumerable.Range(0, 60).Select(i => i * 0.25f - 3).ToArray();
        var file = dir["valid.npy"];
        Xception.Gpu.IO.Npy.Write(file, values, [3, 4, 5]);
        var valid = File.ReadAllBytes(file);
        var mutant = dir["mutant.npy"];
        long bound = 8L * valid.Length + Slack;
        var r = Fuzz.Run("npy", valid, Cases, 1000, bytes =>
        {
            File.WriteAllBytes(mutant, bytes);
            var a = Xception.Gpu.IO.Npy.Read(mutant);
            Assert.Equal(a.Shape.Aggregate(1L, (n, d) => n * d), a.Data.Length);
        }, bound);
        Show("npy", Cases, r, bound);
        Assert.True(r.Parsed > 0 && r.Refused > 0, $"parsed {r.Parsed}, refused {r.Refused}: the mutations should do both");
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Idx(bool mutateLabels, bool gzip)
    {
        using var dir = new TempDir();
        // Random pixels, so that the gzipped file is about as long as the data and the bound fits both forms.
        var rnd = new Random(7);
        var pixels = new byte[12 * 7 * 6];
        rnd.NextBytes(pixels);
        var labelBytes = Enumerable.Range(0, 12).Select(_ => (byte)rnd.Next(10)).ToArray();
        var images = DataFiles.Idx(IdxSource.ImagesMagic, [12, 7, 6], pixels);
        var labels = DataFiles.Idx(IdxSource.LabelsMagic, [12], labelBytes);
        if (gzip) (images, labels) = (DataFiles.Gzip(images), DataFiles.Gzip(labels));
        var ip = dir.Write("images", images);
        var lp = dir.Write("labels", labels);
        var target = mutateLabels ? lp : ip;
        long bound = 8L * (images.Length + labels.Length + 16 + 8 + pixels.Length + labelBytes.Length) + Slack;
        var name = $"idx {(mutateLabels ? "labels" : "images")}{(gzip ? " gzipped" : "")}";
        var r = Fuzz.Run(name, mutateLabels ? labels : images, Cases, 2000, bytes =>
        {
            File.WriteAllBytes(target, bytes);
            var src = new IdxSource(ip, lp);
            for (int i = 0; i < src.Count; i++)
            {
                var img = src.Load(i);
                img.Validate(name);
                Assert.InRange(img.Label, 0, src.Classes - 1);
            }
        }, bound);
        Show(name, Cases, r, bound);
        Assert.True(r.Parsed > 0 && r.Refused > 0, $"parsed {r.Parsed}, refused {r.Refused}: the mutations should do both");
    }

    [Fact]
    public void Cifar10()
    {
        using var dir = new TempDir();
        byte[] labels = [3, 9, 0];
        var valid = labels.SelectMany((l, i) => DataFiles.CifarRecord(l, DataFiles.Pattern(32, 32, i))).ToArray();
        var mutant = dir["data_batch_1.bin"];
        long bound = 8L * valid.Length + Slack;
        var r = Fuzz.Run("cifar-10", valid, Cases / 2, 3000, bytes =>
        {
            File.WriteAllBytes(mutant, bytes);
            var src = new Cifar10Source([mutant]);
            for (int i = 0; i < src.Count; i++)
            {
                var img = src.Load(i);
                img.Validate("cifar-10");
                Assert.InRange(img.Label, 0, 9);
            }
        }, bound);
        Show("cifar-10", Cases / 2, r, bound);
        Assert.True(r.Parsed > 0 && r.Refused > 0, $"parsed {r.Parsed}, refused {r.Refused}: the mutations should do both");
    }
}
