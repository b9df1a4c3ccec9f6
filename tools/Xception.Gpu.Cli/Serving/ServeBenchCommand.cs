using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;

namespace Xception.Gpu.Cli.Serving;

/// <summary>
/// A bounded closed-loop load test of a running `xception serve` on loopback, printing what Triton's perf_analyzer
/// prints: throughput, latency percentiles, queue and compute time per request, the average batch, the answers.
/// </summary>
static class ServeBenchCommand
{
    public static CliCommand Definition => new("serve-bench", "load-test a running 'xception serve' on this machine: throughput and latency at several concurrencies", Run, """
        xception serve-bench [--url http://127.0.0.1:8080] [--model xception] [--image FILE] [--concurrency 1,2,4,8,16]
                             [--requests 64] [--time-cap-s 120] [--api-key K] [--csv FILE --label TEXT]
        xception serve-bench --plot OUT.png A.csv B.csv ...

        At each concurrency C, C clients each send POST /predictions/NAME with the image and send the next as
        soon as the answer comes (a closed loop), until --requests requests were sent or --time-cap-s passed.
        Only loopback addresses are accepted: this measures the server, not a network. Prints per level:
        inferences/s (answered 200, over the level's wall time), the p50/p90/p95/p99 latency of the 200s, the
        mean queue and compute time per request and the average batch (inferences / executions), read from
        the server's /metrics before and after the level, and the count of 200, 503 (or 429) and other answers.
        --csv appends the rows (with --label) to FILE; --plot draws throughput and p99 latency against
        concurrency for one or more such files. Without --image, a 320 x 240 PNG is made up.
        """)
    {
        Files("CSV", "with --plot: the CSV files of earlier runs"),
        Value("url", "URL", "the server (default http://127.0.0.1:8080; loopback only)"),
        Value("model", "NAME", "the model to call (default xception)"),
        Value("image", "FILE", "the image every request sends (default: a made-up 320 x 240 PNG)"),
        Value("concurrency", "C1,C2,...", "the concurrencies, in order (default 1,2,4,8,16)"),
        Value("requests", "N", "requests per level (default 64)"),
        Value("time-cap-s", "S", "the most seconds per level (default 120)"),
        Value("api-key", "K", "sent as 'Authorization: Bearer K'"),
        Value("csv", "FILE", "append each level's row to FILE"),
        Value("label", "TEXT", "the run's name in the CSV and the plot (default the URL)"),
        Value("plot", "OUT.png", "draw the CSV files given as arguments instead of running"),
    };

    const string CsvHeader = "label,concurrency,requests,ok,refused,other,seconds,infer_per_s,p50_ms,p90_ms,p95_ms,p99_ms,queue_ms,compute_ms,avg_batch";

    internal sealed record Level(string Label, int Concurrency, int Requests, int Ok, int Refused, int Other, double Seconds, double InferPerSecond,
        double P50, double P90, double P95, double P99, double QueueMs, double ComputeMs, double AverageBatch);

    static int Run(Args a)
    {
        if (a.String("plot") is { } plot) return Plot(plot, a.Positional);
        if (a.Positional.Count > 0) throw new UsageException($"serve-bench takes no arguments without --plot, got '{a.Positional[0]}'");
        var url = a.String("url", "http://127.0.0.1:8080");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != "http")
            throw new UsageException($"--url takes http://HOST:PORT, got '{url}'");
        if (!uri.IsLoopback) throw new UsageException($"--url must be a loopback address (127.0.0.1, ::1 or localhost): serve-bench measures the server on this machine, got '{uri.Host}'");
        var model = a.String("model", "xception");
        var levels = a.String("concurrency", "1,2,4,8,16").Split(',', StringSplitOptions.TrimEntries).Select(s =>
            int.TryParse(s, out int c) && c is >= 1 and <= 1024 ? c : throw new UsageException($"--concurrency takes numbers from 1 to 1024 separated by commas, got '{s}'")).ToList();
        int requests = a.Int("requests", 64, 1, 1_000_000);
        var cap = TimeSpan.FromSeconds(a.Int("time-cap-s", 120, 1, 86400));
        var csv = a.String("csv");
        var label = a.String("label", url);
        if (label.Contains(',') || label.Contains('"')) throw new UsageException("--label cannot hold commas or quotes (it is a CSV field)");
        byte[] image = a.String("image") is { } file ? ReadImage(file) : MadeUpPng();

        using var client = new HttpClient { BaseAddress = uri, Timeout = TimeSpan.FromMinutes(10) };
        if (a.String("api-key") is { } key) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        Ready(client, model);
        string path = $"/predictions/{Uri.EscapeDataString(model)}";
        // Warm-up, not counted: the first requests of a connection pay for its setup.
        for (int i = 0; i < 2; i++) Send(client, path, image).GetAwaiter().GetResult();

        Console.WriteLine($"serve-bench: {uri} model {model}, {requests} requests per level (at most {cap.TotalSeconds:F0} s), image of {image.Length:N0} bytes");
        Console.WriteLine("concurrency  infer/s   p50 ms   p90 ms   p95 ms   p99 ms  queue ms  compute ms  avg batch    200  503/429  other");
        var rows = new List<Level>();
        foreach (int c in levels)
        {
            var row = Measure(client, path, model, image, label, c, requests, cap);
            rows.Add(row);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{c,11}  {row.InferPerSecond,7:F2}  {row.P50,7:F1}  {row.P90,7:F1}  {row.P95,7:F1}  {row.P99,7:F1}  {row.QueueMs,8:F1}  {row.ComputeMs,10:F1}  {row.AverageBatch,9:F2}  {row.Ok,5}  {row.Refused,7}  {row.Other,5}"));
        }
        if (csv is not null)
        {
            bool fresh = !File.Exists(csv) || new FileInfo(csv).Length == 0;
            var sb = new StringBuilder();
            if (fresh) sb.Append(CsvHeader).Append('\n');
            foreach (var r in rows)
                sb.Append(string.Join(",", new object[] { r.Label, r.Concurrency, r.Requests, r.Ok, r.Refused, r.Other, r.Seconds, r.InferPerSecond, r.P50, r.P90, r.P95, r.P99, r.QueueMs, r.ComputeMs, r.AverageBatch }
                    .Select(v => Convert.ToString(v, CultureInfo.InvariantCulture)))).Append('\n');
            File.AppendAllText(csv, sb.ToString());
            Console.Error.WriteLine($"appended {rows.Count} rows to {csv}");
        }
        return rows.Any(r => r.Ok == 0) ? 1 : 0;
    }

    static byte[] ReadImage(string file)
    {
        try { return File.ReadAllBytes(file); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new XceptionException($"--image '{file}' could not be read: {e.Message}"); }
    }

    /// <summary>A smooth gradient with a bright square, 320 x 240, as PNG.</summary>
    static byte[] MadeUpPng()
    {
        const int w = 320, h = 240;
        var px = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = 3 * (y * w + x);
                bool square = x > w / 3 && x < w / 2 && y > h / 3 && y < h / 2;
                px[i] = square ? (byte)250 : (byte)(x * 255 / w);
                px[i + 1] = square ? (byte)250 : (byte)(y * 255 / h);
                px[i + 2] = square ? (byte)250 : (byte)((x + y) % 256);
            }
        using var ms = new MemoryStream();
        new StbImageWriteSharp.ImageWriter().WritePng(px, w, h, StbImageWriteSharp.ColorComponents.RedGreenBlue, ms);
        return ms.ToArray();
    }

    static void Ready(HttpClient client, string model)
    {
        try
        {
            using var r = client.GetAsync("/v2/health/ready").GetAwaiter().GetResult();
            if (!r.IsSuccessStatusCode) throw new XceptionException($"the server at {client.BaseAddress} is not ready ({(int)r.StatusCode}); wait for 'xception serve: ready'");
            using var m = client.GetAsync($"/v2/models/{Uri.EscapeDataString(model)}").GetAwaiter().GetResult();
            if (!m.IsSuccessStatusCode) throw new XceptionException($"the server at {client.BaseAddress} does not serve model '{model}' ({(int)m.StatusCode})");
        }
        catch (HttpRequestException e)
        {
            throw new XceptionException($"no server at {client.BaseAddress}: {e.Message}; start one with 'xception serve --weights W'");
        }
    }

    static async Task<(int Status, double Ms)> Send(HttpClient client, string path, byte[] image)
    {
        long start = Stopwatch.GetTimestamp();
        var content = new ByteArrayContent(image);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var r = await client.PostAsync(path, content).ConfigureAwait(false);
        await r.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
        return ((int)r.StatusCode, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
    }

    static Level Measure(HttpClient client, string path, string model, byte[] image, string label, int concurrency, int requests, TimeSpan cap)
    {
        var before = Scrape(client, model);
        int left = requests;
        var results = new List<(int Status, double Ms)>();
        var sw = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Decrement(ref left) >= 0 && sw.Elapsed < cap)
            {
                var r = await Send(client, path, image).ConfigureAwait(false);
                lock (results) results.Add(r);
            }
        })).ToArray();
        Task.WaitAll(workers);
        double seconds = sw.Elapsed.TotalSeconds;
        var after = Scrape(client, model);
        var ok = results.Where(r => r.Status == 200).Select(r => r.Ms).Order().ToArray();
        int refused = results.Count(r => r.Status is 503 or 429);
        double P(double q) => ok.Length == 0 ? double.NaN : ok[Math.Min(ok.Length - 1, (int)Math.Ceiling(q * ok.Length) - 1)];
        double served = after["nv_inference_request_success"] - before["nv_inference_request_success"];
        double executions = after["nv_inference_exec_count"] - before["nv_inference_exec_count"];
        double inferences = after["nv_inference_count"] - before["nv_inference_count"];
        return new Level(label, concurrency, results.Count, ok.Length, refused, results.Count - ok.Length - refused, seconds, ok.Length / seconds,
            P(0.50), P(0.90), P(0.95), P(0.99),
            served > 0 ? (after["nv_inference_queue_duration_us"] - before["nv_inference_queue_duration_us"]) / served / 1000 : double.NaN,
            served > 0 ? (after["nv_inference_compute_infer_duration_us"] - before["nv_inference_compute_infer_duration_us"]) / served / 1000 : double.NaN,
            executions > 0 ? inferences / executions : double.NaN);
    }

    static readonly string[] Counters = ["nv_inference_request_success", "nv_inference_count", "nv_inference_exec_count", "nv_inference_queue_duration_us", "nv_inference_compute_infer_duration_us"];

    /// <summary>The model's counters from /metrics.</summary>
    static Dictionary<string, double> Scrape(HttpClient client, string model)
    {
        var text = client.GetStringAsync("/metrics").GetAwaiter().GetResult();
        var values = new Dictionary<string, double>();
        string labels = $"{{model=\"{model}\",version=\"1\"}} ";
        foreach (var line in text.Split('\n'))
            foreach (var name in Counters)
                if (line.StartsWith(name + labels, StringComparison.Ordinal))
                    values[name] = double.Parse(line[(name.Length + labels.Length)..], CultureInfo.InvariantCulture);
        foreach (var name in Counters)
            if (!values.ContainsKey(name)) throw new XceptionException($"the server's /metrics has no {name} for model '{model}'");
        return values;
    }

    static int Plot(string output, IReadOnlyList<string> files)
    {
        if (files.Count == 0) throw new UsageException("--plot needs the CSV files of earlier runs as arguments");
        var rows = new List<Level>();
        foreach (var f in files)
        {
            if (!File.Exists(f)) throw new XceptionException($"CSV file '{f}' not found");
            var lines = File.ReadAllLines(f);
            if (lines.Length == 0 || lines[0] != CsvHeader) throw new XceptionException($"'{f}' is not a serve-bench CSV (its first line must be: {CsvHeader})");
            foreach (var (line, n) in lines.Skip(1).Select((l, i) => (l, i + 2)).Where(x => x.l.Length > 0))
            {
                var v = line.Split(',');
                double D(int i) => double.TryParse(v[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d
                    : throw new XceptionException($"{f}:{n}: field {i + 1} is '{v[i]}', not a number");
                if (v.Length != 15) throw new XceptionException($"{f}:{n}: {v.Length} fields, expected 15");
                rows.Add(new Level(v[0], (int)D(1), (int)D(2), (int)D(3), (int)D(4), (int)D(5), D(6), D(7), D(8), D(9), D(10), D(11), D(12), D(13), D(14)));
            }
        }
        Plots.Serving(rows, output);
        Console.Error.WriteLine($"wrote {output}");
        return 0;
    }
}
