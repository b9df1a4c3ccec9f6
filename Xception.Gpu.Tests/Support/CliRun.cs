namespace Xception.Gpu.Tests;

/// <summary>Runs the `xception` command in-process with its output (stdout and stderr together) captured.</summary>
internal static class CliRun
{
    public static (int Code, string Out) Run(params string[] args)
    {
        var (o, e) = (Console.Out, Console.Error);
        var w = new StringWriter();
        Console.SetOut(w); Console.SetError(w);
        try { return (Gpu.Cli.Cli.Run(args), w.ToString()); }
        finally { Console.SetOut(o); Console.SetError(e); }
    }
}
