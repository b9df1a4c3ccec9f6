namespace Xception.Gpu.IO;

/// <summary>What every reader of weight files checks first, so that all of them say the same thing.</summary>
internal static class WeightsFiles
{
    /// <summary>A path that is no file gets told apart: a folder is not "missing", it is the wrong kind of thing.</summary>
    public static void RequireFile(string path)
    {
        if (Directory.Exists(path))
            throw new WeightsException($"'{path}' is a directory; expected a weights file (Keras .h5 or an Xception.Gpu checkpoint .safetensors)");
        if (!File.Exists(path)) throw new WeightsException($"weights file '{path}' does not exist");
    }
}
