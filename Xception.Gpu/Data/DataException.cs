namespace Xception.Gpu.Data;

/// <summary>
/// A data set that cannot be opened or read: a missing folder or file, a file in the wrong format, labels that
/// do not match the images, an unknown data set name. The message is one line that names the file, folder or
/// value and says what was expected, because these errors reach users who typed a path on a command line.
/// Undecodable images inside a data set are <see cref="Imaging.ImageException"/>s instead, so a training run can skip them.
/// </summary>
public sealed class DataException : XceptionException
{
    /// <summary>The file, folder or specification at fault, as the caller named it.</summary>
    public string Path { get; }

    /// <summary>An error about <paramref name="path"/>; <paramref name="message"/> is the whole one-line message.</summary>
    public DataException(string path, string message, Exception? inner = null) : base(message, inner) => Path = path;
}
