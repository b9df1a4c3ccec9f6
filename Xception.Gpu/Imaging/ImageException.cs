namespace Xception.Gpu.Imaging;

/// <summary>
/// An image file that cannot be decoded: missing, empty, not an image, or corrupt. The message is one line
/// that names the file and, for a decoding failure, gives the decoder's reason.
/// </summary>
public sealed class ImageException : XceptionException
{
    /// <summary>The file as the caller named it.</summary>
    public string Path { get; }

    public ImageException(string path, string message, Exception? inner = null) : base(message, inner) => Path = path;
}
