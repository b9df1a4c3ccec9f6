using System.Diagnostics;

namespace Xception.Gpu.Tests;

/// <summary>
/// Ctrl-C for a child process. A shell without job control starts its background commands with SIGINT ignored
/// (POSIX), their children inherit that, and .NET leaves an inherited ignored SIGINT ignored, as a background job
/// should. Under such a parent (a CI runner started with '&amp;', say) no SIGINT can reach the child, so these tests
/// send SIGTERM there instead, which takes the same path through the command line's stop handling.
/// </summary>
static class Interrupt
{
    /// <summary>Sends SIGINT, or SIGTERM where this process ignores SIGINT; returns the name the child will print.</summary>
    public static string Send(Process process)
    {
        string signal = SigIntIgnored() ? "TERM" : "INT";
        if (signal == "TERM") Console.WriteLine("SIGINT is ignored in this process (started in the background by a shell): sending SIGTERM instead");
        using (var kill = Process.Start("kill", ["-" + signal, process.Id.ToString()])) kill.WaitForExit();
        return "SIG" + signal;
    }

    /// <summary>Bit 1 of SigIgn in /proc/self/status is signal 2, SIGINT.</summary>
    static bool SigIntIgnored()
    {
        var line = File.Exists("/proc/self/status") ? File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:")) : null;
        return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & 2) != 0;
    }
}
