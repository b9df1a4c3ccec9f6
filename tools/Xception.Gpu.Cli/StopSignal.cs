using System.Runtime.InteropServices;

namespace Xception.Gpu.Cli;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM: the first cancels <see cref="Token"/> (training finishes its step and writes a
/// checkpoint; the server drains) and says so; a second ends the process at once (the signal's default action).
/// </summary>
sealed class StopSignal : IDisposable
{
    /// <summary>The shell's code for a process ended by SIGINT (128 + 2).</summary>
    public const int ExitCode = 130;

    readonly CancellationTokenSource source = new();
    readonly List<PosixSignalRegistration> registrations = new();
    int received;

    readonly string action;

    /// <param name="action">what the first signal does, for the line printed when it comes</param>
    public StopSignal(string action = "finishing this step and writing a checkpoint")
    {
        this.action = action;
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
        {
            try { registrations.Add(PosixSignalRegistration.Create(signal, Handle)); }
            catch (PlatformNotSupportedException) { }
        }
    }

    public CancellationToken Token => source.Token;

    /// <summary>The signal that came (SIGINT or SIGTERM); empty before.</summary>
    public string Signal { get; private set; } = "";

    void Handle(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref received) > 1) return; // Cancel stays false: the process ends now
        context.Cancel = true;
        Signal = context.Signal.ToString();
        Console.Error.WriteLine($"\nxception: {Signal}: {action} (send it again to stop at once)");
        source.Cancel();
    }

    public void Dispose()
    {
        foreach (var r in registrations) r.Dispose();
        source.Dispose();
    }
}
