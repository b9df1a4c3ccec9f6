namespace Xception.Gpu.Cli;

/// <summary>
/// Checks, before any work starts, that the files a command will write can be written: a run that trains
/// for an hour and then finds its log folder missing has lost the hour.
/// </summary>
static class OutputPaths
{
    /// <summary>A folder that exists or can be made, and in which a file can be created.</summary>
    public static void Folder(string option, string dir)
    {
        if (System.IO.File.Exists(dir)) throw new XceptionException($"{option} '{dir}' is a file, expected a folder");
        try { Directory.CreateDirectory(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        { throw new XceptionException($"{option}: cannot create the folder '{dir}' ({Reason(e)})"); }
        Probe(option, dir, dir);
    }

    /// <summary>A file path whose folder exists and is writable, and that is not a folder itself.</summary>
    public static void WritableFile(string option, string path)
    {
        if (Directory.Exists(path)) throw new XceptionException($"{option} '{path}' is a folder, expected a file name");
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(dir)) throw new XceptionException($"{option} '{path}': its folder '{dir}' does not exist");
        Probe(option, path, dir);
    }

    /// <summary>Creates and deletes a file in <paramref name="dir"/>: permissions, read-only mounts and /proc all show here.</summary>
    static void Probe(string option, string what, string dir)
    {
        var probe = Path.Combine(dir, $".xception-write-test.{Environment.ProcessId}.tmp");
        try
        {
            using (var f = new FileStream(probe, FileMode.Create, FileAccess.Write)) f.WriteByte(0);
            System.IO.File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { System.IO.File.Delete(probe); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw new XceptionException($"{option} '{what}' cannot be written ({Reason(e)})");
        }
    }

    static string Reason(Exception e) => e.Message.Split('\n')[0].TrimEnd('.', ' ');
}
