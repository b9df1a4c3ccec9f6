using System.Globalization;
using StbImageSharp;

namespace Xception.Gpu.Imaging;

/// <summary>
/// Decodes image files with StbImageSharp (a C# port of stb_image): JPEG (baseline and progressive), PNG
/// (every colour type and bit depth, interlaced too), BMP, GIF (the first frame), TGA and PSD.
///
/// Every image becomes 8-bit RGB, the result PIL's <c>convert('RGB')</c> gives in Keras' <c>load_img</c>:
/// grayscale is replicated into R, G and B; gray+alpha and RGBA drop the alpha channel (no compositing over
/// a background, as PIL does); palette images are looked up in their palette; 16-bit PNG samples keep their
/// high byte (stb's conversion is value &gt;&gt; 8, a truncation, not a rounding).
/// JPEG pixels can differ by a few levels from PIL's, which uses libjpeg's IDCT and chroma upsampling;
/// neither applies EXIF orientation.
///
/// Before decoding, the header is read and an image declaring more than <see cref="MaxPixels"/> pixels, or a
/// width or height below 1, is refused: stb allocates its buffers from the header alone (native memory, a few
/// bytes a pixel), so a file of a few dozen bytes could otherwise claim gigabytes. For a GIF both the logical
/// screen and the first frame count.
///
/// A file that ends early is an error, as in PIL (stb alone reads missing bytes as zeros, so a truncated JPEG
/// decodes into grey blocks and a truncated BMP, GIF, TGA or PSD into black pixels): a PNG must reach its IEND
/// chunk; a JPEG its end-of-image marker; a BMP must hold every row of pixel data from the header's offset (the
/// last row's padding excepted); a GIF its first frame's image data up to its terminating block; a TGA its
/// pixel data (uncompressed) or run-length packets covering every pixel; a PSD its merged image data, raw or
/// as many bytes as its RLE row table says.
///
/// A PNG whose compressed data inflates to more than twice what its header needs is refused too, before stb
/// inflates it all into native memory (see <see cref="PngInflateCheck"/>), and so is one whose compressed data
/// zlib cannot inflate.
/// </summary>
public static class ImageLoader
{
    /// <summary>What stb can decode, for error messages.</summary>
    public const string Supported = "JPEG, PNG, BMP, GIF, TGA or PSD";

    /// <summary>The default of <see cref="MaxPixels"/>: PIL's <c>Image.MAX_IMAGE_PIXELS</c>, int(1024 * 1024 * 1024 / 4 / 3).</summary>
    public const long DefaultMaxPixels = 1024L * 1024 * 1024 / 4 / 3;

    static long maxPixels = DefaultMaxPixels;

    /// <summary>
    /// The most pixels (width x height) an image may declare; a larger one is refused before decoding, as a
    /// possible decompression bomb. The default, 89,478,485, is PIL's <c>Image.MAX_IMAGE_PIXELS</c>
    /// (int(1024 * 1024 * 1024 / 4 / 3): a gigabyte at 4 bytes a pixel, over 3), so what Keras' <c>load_img</c>
    /// opens opens here too (PIL only warns below twice that; this refuses). It applies to every later load, on
    /// every thread; at least 1.
    /// </summary>
    public static long MaxPixels
    {
        get => Interlocked.Read(ref maxPixels);
        set
        {
            if (value < 1)
                throw new ArgumentOutOfRangeException(null, string.Create(CultureInfo.InvariantCulture, $"ImageLoader.MaxPixels must be at least 1 pixel, got {value:N0}"));
            Interlocked.Exchange(ref maxPixels, value);
        }
    }

    /// <summary>Reads and decodes one file; any failure is an <see cref="ImageException"/> naming the file.</summary>
    public static RgbImage Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        // File.ReadAllBytes on a directory fails with UnauthorizedAccessException on Windows and
        // "Access denied"/"not found" style messages elsewhere; none of them says what is wrong.
        if (Directory.Exists(path))
            throw new ImageException(path, $"'{path}' is a directory, expected an image file");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw new ImageException(path, $"image file '{path}' not found", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new ImageException(path, $"image file '{path}' could not be read: {e.Message}", e); }
        if (bytes.Length == 0)
            throw new ImageException(path, $"image file '{path}' is empty (0 bytes)");
        return Decode(path, bytes);
    }

    /// <summary>
    /// Decodes an encoded image held in memory; <paramref name="name"/> only labels errors. stb keeps its
    /// failure reason in a static field, so the reason reported under concurrent failures may be another
    /// call's; the failure itself is always reported.
    /// </summary>
    public static RgbImage Decode(string name, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        // The size first: a bomb is usually also truncated (a header and little data), and its size is what
        // the user needs to hear about.
        long limit = MaxPixels;
        if (ImageHeader.Read(bytes) is { } size)
        {
            var part = size.Part is null ? "" : $" (its {size.Part})";
            if (size.Width < 1 || size.Height < 1)
                throw new ImageException(name, $"image file '{name}' declares a {size.Format.ToString().ToUpperInvariant()} image of {size.Width}x{size.Height} pixels{part}; expected a width and height of at least 1");
            if (size.Pixels > limit)
                throw new ImageException(name, string.Create(CultureInfo.InvariantCulture,
                    $"image file '{name}' is {size.Width}x{size.Height} = {size.Pixels:N0} pixels{part}, more than the limit of {limit:N0} (ImageLoader.MaxPixels); refused as a possible decompression bomb"));
        }
        if (TruncationCheck.Find(bytes) is { } truncated)
            throw new ImageException(name, $"image file '{name}' is {truncated}");
        // After the truncation check, which guarantees the chunks it walks are whole.
        if (PngInflateCheck.Find(bytes) is { } inflated)
            throw new ImageException(name, $"image file '{name}' is {inflated}");
        ImageResult result;
        try
        {
            result = ImageResult.FromMemory(bytes, ColorComponents.RedGreenBlue);
        }
        catch (Exception e)
        {
            // stb reports failures as InvalidOperationException(reason); a corrupt file can also trip the port's
            // bounds checks, which surface as other exception types. OutOfMemoryException is caught too: with
            // the size checked above, stb's buffers are a few bytes per allowed pixel, so running out means
            // MaxPixels was set above what this process can hold for this file, and the failed allocation
            // leaves nothing behind; it is this file's failure, not the process's.
            var reason = e is InvalidOperationException ? Reason(e.Message)
                : e is OutOfMemoryException ? "out of memory; lower ImageLoader.MaxPixels"
                : $"{e.GetType().Name}: {OneLine(e.Message)}";
            throw new ImageException(name, $"image file '{name}' is not an image or is corrupt (stb: {reason}); expected {Supported}", e);
        }
        if (result.Width <= 0 || result.Height <= 0 || result.Data is null || result.Data.Length != 3L * result.Width * result.Height)
            throw new ImageException(name, $"image file '{name}' decoded to an unusable {result.Width}x{result.Height} image");
        return new RgbImage(result.Width, result.Height, result.Data);
    }

    /// <summary>
    /// stb's reason, made printable. For an unknown critical PNG chunk stb builds the reason in a char buffer,
    /// "XXXX PNG chunk not known" with the chunk type in place of XXXX; StbImageSharp 2.30 returns only the type
    /// followed by NULs, so that case is rebuilt here.
    /// </summary>
    static string Reason(string message)
    {
        if (message.Contains('\0'))
        {
            var type = new string(message.TakeWhile(c => c != '\0').Select(c => c is >= ' ' and <= '~' ? c : '?').ToArray());
            return $"unknown critical PNG chunk '{type}'";
        }
        return OneLine(message);
    }

    static string OneLine(string s)
    {
        s = s.Trim();
        int nl = s.IndexOfAny(['\r', '\n']);
        return nl < 0 ? s : s[..nl].TrimEnd();
    }
}
