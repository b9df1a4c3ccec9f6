namespace Xception.Gpu.IO;

/// <summary>
/// A .npy file that cannot be read or written: missing, not a .npy file, truncated, or holding an array this
/// reader does not convert. The message is one line that names the file and says what was expected.
/// </summary>
public sealed class NpyException : XceptionException
{
    /// <summary>The file as the caller named it.</summary>
    public string Path { get; }

    public NpyException(string path, string message, Exception? inner = null) : base(message, inner) => Path = path;
}
