using System.Runtime.InteropServices;

namespace Xception.Gpu.Cli;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM during training: the first asks the trainer to finish its step and write a
/// checkpoint; a second ends the process at once (the signal's default action).
/// </summary>
sealed class StopSignal : IDisposable
{
    /// <summary>The shell's code for a process ended by SIGINT (128 + 2).</summary>
    public const int ExitCode = 130;

    readonly CancellationTokenSource source = new();
    readonly List<PosixSignalRegistration> registrations = new();
    int received;

    public StopSignal()
    {
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
        {
            try { registrations.Add(PosixSignalRegistration.Create(signal, Handle)); }
            catch (PlatformNotSupportedException) { }
        }
    }

    public CancellationToken Token => source.Token;

    void Handle(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref received) > 1) return; // Cancel stays false: the process ends now
        context.Cancel = true;
        Console.Error.WriteLine($"\nxception: {context.Signal}: finishing this step and writing a checkpoint (send it again to stop at once)");
        source.Cancel();
    }

    public void Dispose()
    {
        foreach (var r in registrations) r.Dispose();
        source.Dispose();
    }
}
