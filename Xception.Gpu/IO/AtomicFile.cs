namespace Xception.Gpu.IO;

/// <summary>
/// Writes a file so that a crash never leaves a half-written one behind: into a temporary file beside
/// the target, flushed to disk (fsync), then renamed over the target in one step.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new OutputFileException(path, $"cannot write '{path}': folder '{dir}' does not exist");
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new OutputFileException(path, $"cannot write '{path}': {e.Message}", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>
    /// Deletes the temporary files that writes killed before their rename left in <paramref name="dir"/>
    /// (those of processes no longer running; a live process may be writing its own). Returns their names.
    /// </summary>
    public static IReadOnlyList<string> RemoveLeftovers(string dir)
    {
        var removed = new List<string>();
        if (!Directory.Exists(dir)) return removed;
        foreach (var f in Directory.EnumerateFiles(dir, ".*.tmp"))
        {
            var parts = Path.GetFileName(f).Split('.');
            if (parts.Length < 4 || !int.TryParse(parts[^2], out int pid) || IsRunning(pid)) continue;
            TryDelete(f);
            if (!File.Exists(f)) removed.Add(Path.GetFileName(f));
        }
        return removed;
    }

    static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    static void TryDelete(string p)
    {
        try { File.Delete(p); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
