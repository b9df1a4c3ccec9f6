using System.Diagnostics;

namespace Xception.Gpu.Tests.Serving;

/// <summary>
/// An `xception serve` process started with port 0: its address read from the line it prints, readiness from its
/// "ready" line, SIGTERM to stop it; killed if still running when disposed.
/// </summary>
sealed class ServeProcess : IDisposable
{
    const string Listening = "xception serve: listening on ";
    readonly System.Text.StringBuilder output = new();
    readonly TaskCompletionSource<string> url = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly TaskCompletionSource ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    ServeProcess(Process process) => Process = process;

    public Process Process { get; }

    /// <summary>Everything it printed so far, stdout and stderr together.</summary>
    public string Output { get { lock (output) return output.ToString(); } }

    /// <summary>The first address it listens on (blocks until printed, at most 3 minutes).</summary>
    public string Url => url.Task.WaitAsync(TimeSpan.FromMinutes(3)).GetAwaiter().GetResult();

    /// <summary>Completes when it printed that it is ready; faults when it exited before.</summary>
    public Task Ready => ready.Task;

    public static ServeProcess Start(ProcessStartInfo psi)
    {
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        var s = new ServeProcess(Process.Start(psi)!);
        s.Process.OutputDataReceived += (_, e) => s.Line(e.Data);
        s.Process.ErrorDataReceived += (_, e) => s.Line(e.Data);
        s.Process.EnableRaisingEvents = true;
        s.Process.Exited += (_, _) =>
        {
            var failed = new InvalidOperationException($"xception serve exited with {s.Process.ExitCode} before it was ready:\n{s.Output}");
            s.url.TrySetException(failed);
            s.ready.TrySetException(failed);
        };
        s.Process.BeginOutputReadLine();
        s.Process.BeginErrorReadLine();
        return s;
    }

    void Line(string? l)
    {
        if (l is null) return;
        lock (output) output.AppendLine(l);
        if (l.StartsWith(Listening)) url.TrySetResult(l[Listening.Length..].Trim());
        if (l.StartsWith("xception serve: ready")) ready.TrySetResult();
    }

    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", Process.Id.ToString()]);
        kill.WaitForExit();
    }

    public bool WaitForExit(TimeSpan limit)
    {
        if (!Process.WaitForExit(limit)) return false;
        Process.WaitForExit(); // the output readers have finished
        return true;
    }

    public void Dispose()
    {
        if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        Process.Dispose();
    }
}
