using Xception.Gpu.Tests.Serving;
using System.Net;
using System.Net.Sockets;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Cli;

/// <summary>`xception serve` and `serve-bench` refusing what they cannot do: one line, a non-zero exit, nothing left running.</summary>
public class ServeCliTests
{
    [Theory]
    [InlineData(new[] { "serve" }, 2, "xception: serve needs --weights (a Keras .h5 file or a checkpoint)")]
    [InlineData(new[] { "serve", "--weights", "/nonexistent/w.h5" }, 1, "xception: error: weights file '/nonexistent/w.h5' does not exist")]
    [InlineData(new[] { "serve", "--weights", "W", "--urls", "ftp://x" }, 2, "xception: --urls takes http://HOST:PORT addresses separated by ';', got 'ftp://x'")]
    [InlineData(new[] { "serve", "--weights", "W", "--max-batch-size", "0" }, 2, "xception: --max-batch-size must be between 1 and 4096, got 0")]
    [InlineData(new[] { "serve", "--weights", "W", "--overload-status", "500" }, 2, "xception: --overload-status must be 503 or 429, got '500'")]
    [InlineData(new[] { "serve", "--weights", "W", "--api-key", "short" }, 2, "xception: --api-key must be at least 8 characters without spaces")]
    [InlineData(new[] { "serve", "--weights", "W", "--model-name", "a/b" }, 2, "xception: --model-name takes letters, digits, '.', '_' and '-' (at most 64), got 'a/b'")]
    [InlineData(new[] { "serve-bench", "--url", "http://example.com:8080" }, 2, "xception: --url must be a loopback address (127.0.0.1, ::1 or localhost): serve-bench measures the server on this machine, got 'example.com'")]
    [InlineData(new[] { "serve-bench", "--concurrency", "1,x" }, 2, "xception: --concurrency takes numbers from 1 to 1024 separated by commas, got 'x'")]
    [InlineData(new[] { "serve-bench", "--plot", "out.png" }, 2, "xception: --plot needs the CSV files of earlier runs as arguments")]
    public void BadOptionsAreOneLine(string[] args, int code, string message)
    {
        // "W" stands for a weights file that exists, so that the option named is the one refused.
        using var dir = new TempDir();
        var weights = dir.Write("w.safetensors", [0]);
        var (got, output) = CliRun.Run([.. args.Select(a => a == "W" ? weights : a)]);
        Assert.Equal(code, got);
        Assert.Equal(message, output.Trim());
    }

    [Fact]
    public void NoServerAPortInUseAndCorruptWeightsAreNamed()
    {
        // serve-bench against a port where nothing listens.
        var free = new TcpListener(IPAddress.Loopback, 0);
        free.Start();
        int port = ((IPEndPoint)free.LocalEndpoint).Port;
        free.Stop();
        var (code, output) = CliRun.Run("serve-bench", "--url", $"http://127.0.0.1:{port}");
        Assert.Equal(1, code);
        Assert.StartsWith($"xception: error: no server at http://127.0.0.1:{port}/", output.Trim());

        // serve on a port that is taken.
        var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            port = ((IPEndPoint)taken.LocalEndpoint).Port;
            (code, output) = CliRun.Run("serve", "--weights", ServerHost.Weights, "--device", "cpu", "--urls", $"http://127.0.0.1:{port}");
            Assert.Equal(1, code);
            Assert.StartsWith($"xception: error: cannot listen on http://127.0.0.1:{port}", output.Trim());
            Assert.Single(output.Trim().Split('\n'));
        }
        finally { taken.Stop(); }

        // serve with weights that cannot be read: it listened, then the load failed; exit 1 with the reason.
        using var dir = new TempDir();
        var corrupt = dir.Write("w.safetensors", [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        (code, output) = CliRun.Run("serve", "--weights", corrupt, "--device", "cpu", "--urls", "http://127.0.0.1:0");
        Assert.Equal(1, code);
        var errors = output.Split('\n').Where(l => l.StartsWith("xception: error:")).ToList();
        Assert.Single(errors);
        Assert.Contains(corrupt, errors[0]);
    }
}
