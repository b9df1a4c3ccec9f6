using System.Diagnostics;
using System.Net;
using Xception.Gpu.Cli.Serving;
using Xception.Gpu.Serving;
using Xception.Gpu.Tests.Inference;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Serving;

/// <summary>
/// Concurrent clients against the server: batching across clients (bit-identical results, fewer executions than
/// requests), overload (every request answered 200 or 503 with Retry-After, none hangs, ready afterwards), a client
/// that disconnects while queued, and the drain of a real `xception serve` process on SIGTERM.
/// </summary>
public class LoadTests
{
    static byte[][] Images(int n)
    {
        using var dir = new TempDir();
        return [.. Enumerable.Range(0, n).Select(i => File.ReadAllBytes(InferenceApiTests.WritePng(dir, $"{i}.png", 60 + 7 * i, 50 + 5 * i, i)))];
    }

    [Fact]
    public async Task ConcurrentClientsAreBatchedAndGetTheirOneAtATimeResultsBitForBit()
    {
        // A 300 ms queue delay gathers the eight clients into few batches.
        await using var host = await ServerHost.Start(new ServeOptions { Batching = new BatchingOptions { MaxBatchSize = 8, MaxQueueDelayMicroseconds = 300_000 } }, features: false);
        var images = Images(8);
        async Task<string> Predict(byte[] png)
        {
            using var r = await host.PostBytes("/predictions/xception?top=10", png);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            return await r.Content.ReadAsStringAsync();
        }
        var alone = new List<string>();
        foreach (var png in images) alone.Add(await Predict(png)); // one at a time: eight executions
        const string labels = "model=\"xception\",version=\"1\"";
        double executionsBefore = await host.Metric($"nv_inference_exec_count{{{labels}}}");
        Assert.Equal(8, executionsBefore);

        var together = await Task.WhenAll(images.Select(png => Task.Run(() => Predict(png))));
        // The JSON carries every probability of the ten classes as the shortest text that round-trips the float.
        Assert.Equal(alone, together);
        double executions = await host.Metric($"nv_inference_exec_count{{{labels}}}") - executionsBefore;
        Assert.Equal(16, await host.Metric($"nv_inference_count{{{labels}}}"));
        Assert.True(executions < 8, $"8 concurrent requests ran in {executions} executions");
        Assert.True(await host.Metric($"xception_batch_size_count{{{labels}}}") == 8 + executions);
    }

    [Fact]
    public async Task OverloadIsAnsweredAtOnceAndTheServerStaysReady()
    {
        // Batches of one and room for two waiting requests: 16 concurrent clients overflow the queue.
        await using var host = await ServerHost.Start(new ServeOptions { Batching = new BatchingOptions { MaxBatchSize = 1, MaxQueueSize = 2 } }, features: false);
        var png = Images(1)[0];
        var sw = Stopwatch.StartNew();
        var answers = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            using var r = await host.PostBytes("/predictions/xception", png);
            return ((int)r.StatusCode, r.Headers.RetryAfter?.Delta, (await ServerHost.Json(r)).ToString());
        })).ToArray()).WaitAsync(TimeSpan.FromMinutes(2)); // none hangs
        foreach (var (status, retry, body) in answers)
        {
            Assert.True(status is 200 or 503, $"{status}: {body}");
            if (status == 503)
            {
                Assert.Equal(TimeSpan.FromSeconds(1), retry);
                Assert.Contains("the queue is full (2 requests wait for the device)", body);
            }
        }
        int ok = answers.Count(a => a.Item1 == 200), refused = answers.Count(a => a.Item1 == 503);
        Assert.True(ok >= 1 && refused >= 1, $"{ok} answered 200 and {refused} 503");
        const string labels = "model=\"xception\",version=\"1\"";
        Assert.Equal(refused, await host.Metric($"nv_inference_request_failure{{{labels},reason=\"REJECTED\"}}"));
        Assert.Equal(ok, await host.Metric($"nv_inference_request_success{{{labels}}}"));
        Assert.Equal(HttpStatusCode.OK, (await host.Client.GetAsync("/v2/health/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await host.PostBytes("/predictions/xception", png)).StatusCode);
    }

    [Fact]
    public async Task TooManyRequestsCanBeTheOverloadStatusAndQueueTimeoutsAnswerOnTime()
    {
        // A lone request waits 5 s for its batch to fill; the 200 ms queue timeout answers it first, with 429.
        await using var host = await ServerHost.Start(new ServeOptions
        {
            OverloadStatus = 429, RetryAfterSeconds = 2,
            Batching = new BatchingOptions { MaxBatchSize = 8, MaxQueueDelayMicroseconds = 5_000_000, QueueTimeoutMilliseconds = 200 },
        }, features: false);
        var sw = Stopwatch.StartNew();
        using var r = await host.PostBytes("/predictions/xception", Images(1)[0]);
        Assert.Equal(HttpStatusCode.TooManyRequests, r.StatusCode);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(4), $"answered after {sw.Elapsed}");
        Assert.Equal(TimeSpan.FromSeconds(2), r.Headers.RetryAfter?.Delta);
        Assert.Contains("queue timeout", (await ServerHost.Json(r)).GetProperty("error").GetString());
        Assert.Equal(0, await host.Metric("nv_inference_count{model=\"xception\",version=\"1\"}"));
    }

    [Fact]
    public async Task AClientThatDisconnectsWhileQueuedIsDroppedBeforeItsBatchRuns()
    {
        // The request waits 1.5 s for its batch; its client gives up after 300 ms.
        await using var host = await ServerHost.Start(new ServeOptions { Batching = new BatchingOptions { MaxBatchSize = 8, MaxQueueDelayMicroseconds = 1_500_000 } }, features: false);
        using (var impatient = new HttpClient { BaseAddress = new Uri(host.Url), Timeout = TimeSpan.FromMilliseconds(300) })
            await Assert.ThrowsAnyAsync<TaskCanceledException>(() => impatient.PostAsync("/predictions/xception", new ByteArrayContent(Images(1)[0])));
        const string labels = "model=\"xception\",version=\"1\"";
        var sw = Stopwatch.StartNew();
        while (await host.Metric($"nv_inference_request_failure{{{labels},reason=\"CANCELED\"}}") < 1 && sw.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(50);
        Assert.Equal(1, await host.Metric($"nv_inference_request_failure{{{labels},reason=\"CANCELED\"}}"));
        await Task.Delay(2000); // past the queue delay
        Assert.Equal(0, await host.Metric($"nv_inference_exec_count{{{labels}}}"));
        Assert.Equal(0, await host.Metric($"nv_inference_pending_request_count{{{labels}}}"));
    }

    [Fact]
    public async Task SigtermDrainsAnsweringEveryAcceptedRequestThenExitsZero()
    {
        // A 1 s queue delay: the requests are still queued when the signal comes.
        using var serve = ServeProcess.Start(new ProcessStartInfo("dotnet", ["exec", Path.Combine(AppContext.BaseDirectory, "xception.dll"), "serve",
            "--weights", ServerHost.Weights, "--device", "cpu", "--urls", "http://127.0.0.1:0", "--no-features", "--max-queue-delay-us", "1000000", "--drain-timeout-s", "60"]));
        await serve.Ready.WaitAsync(TimeSpan.FromMinutes(3));
        var url = serve.Url;
        using var client = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(2) };
        var png = Images(1)[0];
        var inFlight = Enumerable.Range(0, 4).Select(_ => client.PostAsync("/predictions/xception", new ByteArrayContent(png))).ToList();
        // Wait until the server holds all four (queued for the 1 s delay), then SIGTERM.
        var sw = Stopwatch.StartNew();
        while (!(await client.GetStringAsync("/metrics")).Contains("nv_inference_pending_request_count{model=\"xception\",version=\"1\"} 4") && sw.Elapsed < TimeSpan.FromSeconds(20))
            await Task.Delay(10);
        serve.Terminate();
        foreach (var request in inFlight)
        {
            using var r = await request;
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        // New work is refused: the listener is closed (or, on a connection still open, 503).
        try
        {
            using var fresh = new HttpClient { BaseAddress = new Uri(url) };
            using var late = await fresh.PostAsync("/predictions/xception", new ByteArrayContent(png));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, late.StatusCode);
        }
        catch (HttpRequestException) { }
        Assert.True(serve.WaitForExit(TimeSpan.FromSeconds(60)), "the server did not exit within 60 s of SIGTERM");
        Assert.True(serve.Process.ExitCode == 0, $"exit code {serve.Process.ExitCode}:\n{serve.Output}");
        Assert.Contains("SIGTERM: draining", serve.Output);
        Assert.Contains("stopped after draining", serve.Output);
    }
}
