using Xception.Gpu.Imaging;
using Xunit;
using static Xception.Gpu.Tests.BadInput.TestImages;

namespace Xception.Gpu.Tests.BadInput;

/// <summary>
/// Mutation fuzzing of <see cref="ImageLoader.Decode"/> on a small valid image of each format (see
/// <see cref="Fuzz"/>): every mutant must decode or be refused with a one-line <see cref="ImageException"/>,
/// within a time bound and a managed-memory bound.
///
/// The memory bound: stb (StbImageSharp) allocates its working buffers natively (CRuntime.malloc is
/// Marshal.AllocHGlobal), which GC.GetAllocatedBytesForCurrentThread does not see; only the managed copy of
/// the result (3 bytes a pixel) and small tables are counted. What bounds the native memory is the header
/// check, which refuses any image declaring more than <see cref="ImageLoader.MaxPixels"/> before stb starts.
/// So MaxPixels is lowered to 1,000,000 here, the managed bound is a small multiple of the file plus 4 bytes
/// per allowed pixel, and every mutant that decodes must also be within the limit: a decoded size the header
/// check did not see (a header read differently from stb) would fail that.
/// </summary>
public class ImageFuzzTests(ITestOutputHelper output)
{
    const long Limit = 1_000_000;
    const int Cases = 1000;

    void Run(string format, byte[] valid, int seed)
    {
        long saved = ImageLoader.MaxPixels;
        try
        {
            ImageLoader.MaxPixels = Limit;
            long bound = 16L * (valid.Length + 64) + 4 * Limit + 256 * 1024;
            // What stb threw under the refusals, to show which of its failures the wrapping in Decode caught.
            var causes = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
            var report = Fuzz.Run($"image decoder ({format})", valid, Cases, seed, bytes =>
            {
                RgbImage img;
                try { img = ImageLoader.Decode($"fuzz.{format}", bytes); }
                catch (ImageException e) { causes.AddOrUpdate(e.InnerException?.GetType().Name ?? "header checks", 1, (_, n) => n + 1); throw; }
                if ((long)img.Width * img.Height > Limit)
                    Assert.Fail($"a {img.Width}x{img.Height} {format} decoded past the limit of {Limit:N0} pixels");
            }, bound);
            output.WriteLine($"{format}: {Cases} cases of {valid.Length} bytes: {report.Parsed} decoded, {report.Refused} refused " +
                $"({string.Join(", ", causes.OrderBy(c => c.Key).Select(c => $"{c.Key} {c.Value}"))}); " +
                $"slowest {report.Slowest.TotalMilliseconds:F0} ms; most allocated {report.MostAllocated:N0} bytes (bound {bound:N0})");
            // A fuzz run that refuses everything or nothing has not exercised both sides of the decoder.
            Assert.InRange(report.Refused, 1, Cases - 1);
        }
        finally { ImageLoader.MaxPixels = saved; }
    }

    [Fact] public void Png() => Run("png", Write("png", 16, 16), 1000);
    [Fact] public void Jpeg() => Run("jpg", Write("jpg", 16, 16), 2000);
    [Fact] public void Bmp() => Run("bmp", Write("bmp", 16, 16), 3000);
    [Fact] public void Gif() => Run("gif", TestImages.Gif(16, 16), 4000);
    [Fact] public void Tga() => Run("tga", Write("tga", 16, 16), 5000);
    [Fact] public void Psd() => Run("psd", TestImages.Psd(16, 16), 6000);
}
