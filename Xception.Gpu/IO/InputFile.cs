namespace Xception.Gpu.IO;

/// <summary>
/// Opens an input file for a parser, turning the ways that can fail into the parser's own one-line error:
/// "LABEL 'path' not found", "... is a folder; expected EXPECTED", "... could not be read: reason".
/// A folder is told apart because opening one fails on Unix with "access denied", which says nothing useful.
/// </summary>
internal static class InputFile
{
    public static FileStream OpenRead(string path, string label, string expected, Func<string, Exception, XceptionException> error, int bufferSize = 4096)
    {
        try { return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw error($"{label} '{path}' not found", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (Directory.Exists(path)) throw error($"{label} '{path}' is a folder; expected {expected}", e);
            throw error($"{label} '{path}' could not be read: {e.Message}", e);
        }
    }
}
