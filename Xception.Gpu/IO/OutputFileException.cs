namespace Xception.Gpu.IO;

/// <summary>An output file could not be written: its folder does not exist, or the write failed (the file keeps its earlier content).</summary>
public sealed class OutputFileException(string path, string message, Exception? inner = null) : XceptionException(message, inner)
{
    /// <summary>The file that was to be written.</summary>
    public string Path { get; } = path;
}
