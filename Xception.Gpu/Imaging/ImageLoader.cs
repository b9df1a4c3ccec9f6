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
/// neither applies EXIF orientation. A PNG or JPEG that ends early is an error, as in PIL (stb alone would
/// decode a truncated JPEG into grey blocks).
/// </summary>
public static class ImageLoader
{
    /// <summary>What stb can decode, for error messages.</summary>
    public const string Supported = "JPEG, PNG, BMP, GIF, TGA or PSD";

    /// <summary>Reads and decodes one file; any failure is an <see cref="ImageException"/> naming the file.</summary>
    public static RgbImage Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
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
        if (TruncationCheck.Find(bytes) is { } truncated)
            throw new ImageException(name, $"image file '{name}' is {truncated}");
        ImageResult result;
        try
        {
            result = ImageResult.FromMemory(bytes, ColorComponents.RedGreenBlue);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // stb reports failures as InvalidOperationException(reason); a corrupt file can also trip the port's
            // bounds checks, which surface as other exception types.
            var reason = e is InvalidOperationException ? Reason(e.Message) : $"{e.GetType().Name}: {OneLine(e.Message)}";
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
