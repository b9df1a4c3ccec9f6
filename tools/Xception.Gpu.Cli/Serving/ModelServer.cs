using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xception.Gpu.Serving;

namespace Xception.Gpu.Cli.Serving;

/// <summary>
/// The HTTP server of `xception serve` on Kestrel: the v2 protocol (Triton, KServe), TorchServe-style
/// /predictions and /explanations, Prometheus /metrics, the web page and the OpenAPI description. It listens
/// before the models are loaded (live at once, ready once they are loaded and warmed up), and
/// <see cref="StopAsync"/> drains: readiness turns 503, new work is refused, what was accepted is answered.
/// </summary>
sealed class ModelServer : IAsyncDisposable
{
    readonly WebApplication app;
    readonly ServeOptions options;
    Dictionary<string, ServedModel> models = new();
    volatile bool ready, draining;
    string notReady = "the model is loading";
    int stopped;

    ModelServer(WebApplication app, ServeOptions options)
    {
        this.app = app;
        this.options = options;
    }

    public IReadOnlyList<string> Addresses { get; private set; } = [];

    /// <summary>Completes once the models are loaded and warmed up (ready); faults when loading failed.</summary>
    public Task Loaded { get; private set; } = Task.CompletedTask;

    public IReadOnlyCollection<ServedModel> Models => models.Values;

    /// <summary>The routes served, as "METHOD /pattern" (the fallback aside): what /openapi.json must describe.</summary>
    public IReadOnlyList<string> Routes =>
        [.. ((IEndpointRouteBuilder)app).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? []).Select(m => $"{m} {e.RoutePattern.RawText}"))];

    /// <summary>Starts listening, then loads the models on another thread (see <see cref="Loaded"/>).</summary>
    public static async Task<ModelServer> StartAsync(ServeOptions options, Func<IReadOnlyList<ServedModel>> load)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = "xception" });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        // A failure to start (a port in use) reaches the caller as an exception and its one line; the host's own log
        // of it would be a second report with a stack trace.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
        // Signals are the command's to handle (it drains first); an in-process host (the tests) registers none.
        builder.Services.AddSingleton<IHostLifetime, NoSignals>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.DrainTimeout);
        builder.WebHost.UseUrls([.. options.Urls]);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
        });
        var app = builder.Build();
        var server = new ModelServer(app, options);
        server.Map();
        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        server.Addresses = [.. app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses];
        server.Loaded = Task.Run(() =>
        {
            var loaded = load();
            foreach (var m in loaded) m.Batcher.WarmUp();
            server.models = loaded.ToDictionary(m => m.Name);
            server.ready = !server.draining;
        });
        return server;
    }

    /// <summary>
    /// Drains and stops: readiness turns 503 and new requests are refused at once; Kestrel stops listening and
    /// waits (up to the drain timeout) for the requests in flight, which the batchers finish; then the models go.
    /// </summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref stopped, 1) != 0) return;
        draining = true;
        ready = false;
        notReady = "the server is shutting down";
        using (var timeout = new CancellationTokenSource(options.DrainTimeout))
            await app.StopAsync(timeout.Token).ConfigureAwait(false);
        foreach (var m in models.Values) await m.Batcher.DrainAsync().WaitAsync(options.DrainTimeout).ConfigureAwait(false);
        try { await Loaded.ConfigureAwait(false); } catch { } // a load still running finishes before its models are freed
        foreach (var m in models.Values) m.Batcher.Dispose();
        foreach (var m in models.Values) m.Model.Dispose();
        await app.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    void Map()
    {
        app.Use(Authorize);
        app.MapGet("/", Page);
        app.MapGet("/openapi.json", ctx => Resource(ctx, "openapi.json", "application/json"));
        app.MapGet("/v2", ServerMetadata);
        app.MapGet("/v2/health/live", ctx => Json(ctx, 200, w => w.WriteBoolean("live", true)));
        app.MapGet("/v2/health/ready", ctx => ready ? Json(ctx, 200, w => w.WriteBoolean("ready", true)) : Unavailable(ctx, notReady));
        app.MapGet("/ping", ctx => ready ? Json(ctx, 200, w => w.WriteString("status", "Healthy")) : Unavailable(ctx, notReady));
        // The v2 paths with and without a version (each model has version 1).
        foreach (var model in new[] { "/v2/models/{name}", "/v2/models/{name}/versions/{version}" })
        {
            app.MapGet(model, ctx => Model(ctx, m => ModelMetadata(ctx, m), needsReady: false));
            app.MapGet(model + "/ready", ctx => Model(ctx, m => Json(ctx, 200, w => { w.WriteString("name", m.Name); w.WriteBoolean("ready", true); }), needsReady: true));
            app.MapGet(model + "/stats", ctx => Model(ctx, m => ModelStatistics(ctx, m), needsReady: false));
            app.MapPost(model + "/infer", ctx => Model(ctx, m => Counted(ctx, m, () => Infer(ctx, m)), needsReady: true));
        }
        app.MapPost("/predictions/{name}", ctx => Model(ctx, m => Counted(ctx, m, () => Predict(ctx, m)), needsReady: true));
        app.MapPost("/explanations/{name}", ctx => Model(ctx, m => Counted(ctx, m, () => Explain(ctx, m)), needsReady: true));
        app.MapGet("/metrics", ctx => Text(ctx, 200, Metrics.Render(models.Values), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapFallback(ctx => Error(ctx, 404, $"no endpoint {ctx.Request.Method} {ctx.Request.Path}; see /openapi.json for the API"));
    }

    /// <summary>With an API key set, everything but the health checks, the page and the API description needs it.</summary>
    async Task Authorize(HttpContext ctx, RequestDelegate next)
    {
        if (options.ApiKey is { } key && !IsOpen(ctx.Request.Path))
        {
            var given = ctx.Request.Headers.Authorization.ToString();
            var expected = "Bearer " + key;
            if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(expected)))
            {
                ctx.Response.Headers.WWWAuthenticate = "Bearer";
                await Error(ctx, 401, given.Length == 0 ? "this server needs an API key: send the header 'Authorization: Bearer KEY'" : "the API key is wrong").ConfigureAwait(false);
                return;
            }
        }
        await next(ctx).ConfigureAwait(false);
    }

    static bool IsOpen(PathString path) =>
        path == "/" || path == "/openapi.json" || path == "/ping" || path.StartsWithSegments("/v2/health");

    /// <summary>Finds the model a path names (404 when none), and refuses work while not ready (503).</summary>
    async Task Model(HttpContext ctx, Func<ServedModel, Task> body, bool needsReady)
    {
        var name = ctx.Request.RouteValues["name"] as string ?? "";
        if (!models.TryGetValue(name, out var model))
        {
            if (!ready && !draining && (name == options.ModelName || name == options.FeaturesName))
            {
                await Unavailable(ctx, notReady).ConfigureAwait(false);
                return;
            }
            var known = string.Join(", ", new[] { options.ModelName, options.FeaturesName }.Where(n => models.Count == 0 || models.ContainsKey(n)).Select(n => $"'{n}'"));
            await Error(ctx, 404, $"unknown model '{Clip(name)}'; this server serves {known}").ConfigureAwait(false);
            return;
        }
        if (ctx.Request.RouteValues["version"] is string version && version != ServedModel.Version)
        {
            await Error(ctx, 404, $"model '{model.Name}' has version {ServedModel.Version} only, not '{Clip(version)}'").ConfigureAwait(false);
            return;
        }
        if (needsReady && !ready)
        {
            if (HttpMethods.IsPost(ctx.Request.Method)) model.Batcher.Stats.RecordFailure(FailureReason.Rejected, TimeSpan.Zero);
            await Unavailable(ctx, notReady).ConfigureAwait(false);
            return;
        }
        await body(model).ConfigureAwait(false);
    }

    /// <summary>Runs a request and counts its outcome in the model's statistics, answering each failure with its status.</summary>
    async Task Counted(HttpContext ctx, ServedModel m, Func<Task> body)
    {
        long start = Stopwatch.GetTimestamp();
        TimeSpan Took() => Stopwatch.GetElapsedTime(start);
        try
        {
            await body().ConfigureAwait(false);
            m.Batcher.Stats.RecordSuccess(Took());
        }
        catch (RequestRejectedException e)
        {
            m.Batcher.Stats.RecordFailure(FailureReason.Rejected, Took());
            ctx.Response.Headers.RetryAfter = options.RetryAfterSeconds.ToString();
            await Error(ctx, options.OverloadStatus, e.Message).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            m.Batcher.Stats.RecordFailure(FailureReason.Canceled, Took());
            ctx.Response.StatusCode = 499; // nobody reads it: the client is gone (nginx's "client closed request", for logs)
        }
        catch (Exception e) when (e is PayloadTooLargeException or BadHttpRequestException { StatusCode: 413 })
        {
            m.Batcher.Stats.RecordFailure(FailureReason.BadInput, Took());
            // What is left of the body is not read: the connection cannot carry another request.
            ctx.Response.Headers.Connection = "close";
            await Error(ctx, 413, TooLarge()).ConfigureAwait(false);
        }
        catch (Exception e) when (e is BadRequestException or BadHttpRequestException or InvalidDataException)
        {
            m.Batcher.Stats.RecordFailure(FailureReason.BadInput, Took());
            await Error(ctx, 400, e.Message).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            m.Batcher.Stats.RecordFailure(FailureReason.Internal, Took());
            app.Logger.LogError(e, "{Method} {Path} failed", ctx.Request.Method, ctx.Request.Path);
            await Error(ctx, 500, $"internal error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}").ConfigureAwait(false);
        }
    }

    sealed class PayloadTooLargeException(string message) : Exception(message);

    string TooLarge() => $"the request body is larger than the limit of {options.MaxBodyBytes:N0} bytes";

    /// <summary>
    /// The whole body; more than the limit is refused (413). The rest of a refused body is read and dropped, up to
    /// four times the limit, so that a client still sending gets the answer rather than a broken connection; past
    /// that the connection is closed.
    /// </summary>
    async Task<byte[]> Body(HttpContext ctx)
    {
        // This method enforces the limit (Kestrel's own would stop the draining below).
        if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = null;
        long drainUpTo = options.MaxBodyBytes * 4;
        if (ctx.Request.ContentLength > options.MaxBodyBytes)
        {
            if (ctx.Request.ContentLength <= drainUpTo) await Drain(ctx, drainUpTo).ConfigureAwait(false);
            throw new PayloadTooLargeException(TooLarge());
        }
        using var buffer = new MemoryStream(ctx.Request.ContentLength is { } n ? (int)n : 64 << 10);
        var chunk = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            int read;
            while ((read = await ctx.Request.Body.ReadAsync(chunk, ctx.RequestAborted).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > options.MaxBodyBytes)
                {
                    await Drain(ctx, drainUpTo - buffer.Length - read).ConfigureAwait(false);
                    throw new PayloadTooLargeException(TooLarge());
                }
                buffer.Write(chunk, 0, read);
            }
        }
        finally { ArrayPool<byte>.Shared.Return(chunk); }
        return buffer.ToArray();
    }

    /// <summary>Reads and drops at most <paramref name="bytes"/> more of the body.</summary>
    static async Task Drain(HttpContext ctx, long bytes)
    {
        var scratch = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            int read;
            while (bytes > 0 && (read = await ctx.Request.Body.ReadAsync(scratch.AsMemory(0, (int)Math.Min(scratch.Length, bytes)), ctx.RequestAborted).ConfigureAwait(false)) > 0)
                bytes -= read;
        }
        finally { ArrayPool<byte>.Shared.Return(scratch); }
    }

    /// <summary>An uploaded image: the raw body, or the first file (else the field "data") of a multipart form.</summary>
    async Task<byte[]> Upload(HttpContext ctx)
    {
        // curl --data-binary labels raw bytes application/x-www-form-urlencoded: only a multipart form is a form here.
        if (ctx.Request.ContentType?.StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase) != true)
            return await Body(ctx).ConfigureAwait(false);
        if (ctx.Request.ContentLength > options.MaxBodyBytes) throw new PayloadTooLargeException(TooLarge());
        ctx.Features.Set<IFormFeature>(new FormFeature(ctx.Request, new FormOptions
        {
            MultipartBodyLengthLimit = options.MaxBodyBytes,
            ValueLengthLimit = (int)Math.Min(options.MaxBodyBytes, int.MaxValue),
            ValueCountLimit = 64,
        }));
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted).ConfigureAwait(false);
        if (form.Files.Count > 0)
        {
            using var s = new MemoryStream((int)form.Files[0].Length);
            await form.Files[0].CopyToAsync(s, ctx.RequestAborted).ConfigureAwait(false);
            return s.ToArray();
        }
        if (form.TryGetValue("data", out var data) && data.Count > 0) return Encoding.UTF8.GetBytes(data[0]!);
        throw new BadRequestException("the form holds no file: send the image as a file field (curl -F data=@cat.jpg) or as the raw body");
    }

    float[] Preprocessed(byte[] bytes, ServedModel m)
    {
        var input = new float[(long)m.Model.ImageSize * m.Model.ImageSize * 3];
        InferRequest.Decode("upload", bytes, m, options, input, 0);
        return input;
    }

    async Task Infer(HttpContext ctx, ServedModel m)
    {
        var request = InferRequest.Parse(await Body(ctx).ConfigureAwait(false), m, options);
        var output = await m.Batcher.InferAsync(request.Input, request.Count, ctx.RequestAborted).ConfigureAwait(false);
        int per = m.OutputSize;
        await Json(ctx, 200, w =>
        {
            w.WriteString("model_name", m.Name);
            w.WriteString("model_version", ServedModel.Version);
            if (request.Id is { } id) w.WriteString("id", id);
            w.WriteStartArray("outputs");
            w.WriteStartObject();
            w.WriteString("name", m.OutputName);
            if (request.Classification is { } k)
            {
                w.WriteString("datatype", "BYTES");
                Shape(w, request.Count, k);
                w.WriteStartArray("data");
                for (int i = 0; i < request.Count; i++)
                    foreach (var p in m.Model.Top(output.AsSpan(i * per, per), k))
                        w.WriteStringValue($"{InferRequest.Score(p.Probability)}:{p.Index}:{p.Label}");
                w.WriteEndArray();
            }
            else
            {
                w.WriteString("datatype", "FP32");
                Shape(w, request.Count, per);
                w.WriteStartArray("data");
                foreach (var v in output) w.WriteNumberValue(v);
                w.WriteEndArray();
            }
            w.WriteEndObject();
            w.WriteEndArray();
        }).ConfigureAwait(false);
    }

    static void Shape(Utf8JsonWriter w, params long[] shape)
    {
        w.WriteStartArray("shape");
        foreach (var d in shape) w.WriteNumberValue(d);
        w.WriteEndArray();
    }

    async Task Predict(HttpContext ctx, ServedModel m)
    {
        int top = 0;
        if (m.IsClassifier) top = Query(ctx, "top", "topk") is { } t ? ParseInt(t, "top", 1, m.Model.Config.Classes) : options.DefaultTop;
        var input = Preprocessed(await Upload(ctx).ConfigureAwait(false), m);
        var output = await m.Batcher.InferAsync(input, 1, ctx.RequestAborted).ConfigureAwait(false);
        if (!m.IsClassifier)
        {
            await Json(ctx, 200, w =>
            {
                w.WriteString("model", m.Name);
                w.WriteStartArray("embedding");
                foreach (var v in output) w.WriteNumberValue(v);
                w.WriteEndArray();
            }).ConfigureAwait(false);
            return;
        }
        await Json(ctx, 200, w =>
        {
            w.WriteString("model", m.Name);
            w.WriteStartArray("predictions");
            foreach (var p in m.Model.Top(output, top))
            {
                w.WriteStartObject();
                w.WriteNumber("index", p.Index);
                w.WriteString("label", p.Label);
                w.WriteNumber("probability", p.Probability);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }).ConfigureAwait(false);
    }

    async Task Explain(HttpContext ctx, ServedModel m)
    {
        if (!m.IsClassifier) throw new BadRequestException($"model '{m.Name}' gives embeddings: Grad-CAM explains a class of '{options.ModelName}'");
        int? cls = Query(ctx, "class") is { } c ? ParseInt(c, "class", 0, m.Model.Config.Classes - 1) : null;
        string? layer = Query(ctx, "layer");
        var bytes = await Upload(ctx).ConfigureAwait(false);
        Imaging.RgbImage image;
        try { image = Imaging.ImageLoader.Decode("upload", bytes); }
        catch (Imaging.ImageException bad) { throw new BadRequestException(bad.Message, bad); }
        var input = new float[(long)m.Model.ImageSize * m.Model.ImageSize * 3];
        Imaging.Preprocess.KerasTf(image, m.Model.ImageSize, input, 0, options.Resize);
        var e = await m.Batcher.ExplainAsync(input, cls, layer, ctx.RequestAborted).ConfigureAwait(false);
        var overlay = e.Overlay(image);
        using var png = new MemoryStream();
        new StbImageWriteSharp.ImageWriter().WritePng(overlay.Pixels, overlay.Width, overlay.Height, StbImageWriteSharp.ColorComponents.RedGreenBlue, png);
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "image/png";
        ctx.Response.Headers["X-Class"] = e.Class.ToString();
        ctx.Response.Headers["X-Label"] = Uri.EscapeDataString(e.Label);
        ctx.Response.Headers["X-Layer"] = e.Layer;
        ctx.Response.ContentLength = png.Length;
        await ctx.Response.Body.WriteAsync(png.GetBuffer().AsMemory(0, (int)png.Length)).ConfigureAwait(false);
    }

    static string? Query(HttpContext ctx, params string[] names)
    {
        foreach (var n in names)
            if (ctx.Request.Query.TryGetValue(n, out var v) && v.Count > 0) return v[^1];
        return null;
    }

    static int ParseInt(string text, string name, int min, int max) =>
        int.TryParse(text, out int v) && v >= min && v <= max ? v
        : throw new BadRequestException($"'{name}' must be a whole number from {min} to {max}, got '{Clip(text)}'");

    Task ServerMetadata(HttpContext ctx) => Json(ctx, 200, w =>
    {
        w.WriteString("name", "xception-gpu");
        w.WriteString("version", typeof(ModelServer).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0");
        w.WriteStartArray("extensions");
        w.WriteStringValue("classification");
        w.WriteStringValue("statistics");
        w.WriteEndArray();
    });

    Task ModelMetadata(HttpContext ctx, ServedModel m) => Json(ctx, 200, w =>
    {
        var c = m.Model.Config;
        w.WriteString("name", m.Name);
        w.WriteStartArray("versions");
        w.WriteStringValue(ServedModel.Version);
        w.WriteEndArray();
        w.WriteString("platform", "xception-gpu");
        w.WriteStartArray("inputs");
        Tensor(w, m.InputName, "FP32", [-1, m.Model.ImageSize, m.Model.ImageSize, c.InputChannels]);
        if (c.InputChannels == 3) Tensor(w, ServedModel.ImageInputName, "BYTES", [-1]);
        w.WriteEndArray();
        w.WriteStartArray("outputs");
        Tensor(w, m.OutputName, "FP32", [-1, m.OutputSize]);
        w.WriteEndArray();
        w.WriteStartObject("parameters");
        w.WriteNumber("max_batch_size", options.Batching.MaxBatchSize);
        w.WriteString("output", m.IsClassifier ? "softmax probabilities (Keras' predictions layer)" : $"image embeddings ({m.OutputName})");
        w.WriteString("preprocessing", "FP32 input is Keras' 'tf' mode (RGB / 127.5 - 1); BYTES images are decoded, resized and preprocessed by the server; give one of the two inputs");
        w.WriteEndObject();
    });

    static void Tensor(Utf8JsonWriter w, string name, string datatype, long[] shape)
    {
        w.WriteStartObject();
        w.WriteString("name", name);
        w.WriteString("datatype", datatype);
        Shape(w, shape);
        w.WriteEndObject();
    }

    static Task ModelStatistics(HttpContext ctx, ServedModel m) => Json(ctx, 200, w =>
    {
        var s = m.Batcher.Stats;
        static void Duration(Utf8JsonWriter w, string name, long count, long ns)
        {
            w.WriteStartObject(name);
            w.WriteNumber("count", count);
            w.WriteNumber("ns", ns);
            w.WriteEndObject();
        }
        w.WriteStartArray("model_stats");
        w.WriteStartObject();
        w.WriteString("name", m.Name);
        w.WriteString("version", ServedModel.Version);
        w.WriteNumber("last_inference", s.LastInferenceMilliseconds);
        w.WriteNumber("inference_count", s.Inferences);
        w.WriteNumber("execution_count", s.Executions);
        w.WriteNumber("pending_request_count", s.Pending);
        w.WriteStartObject("inference_stats");
        Duration(w, "success", s.Success, s.SuccessNanoseconds);
        long failed = Enum.GetValues<FailureReason>().Sum(r => s.Failures(r));
        Duration(w, "fail", failed, Enum.GetValues<FailureReason>().Sum(r => s.FailureNanoseconds(r)));
        Duration(w, "queue", s.Success, s.QueueNanoseconds);
        Duration(w, "compute_infer", s.Success, s.ComputeNanoseconds);
        w.WriteStartObject("fail_by_reason");
        foreach (var r in Enum.GetValues<FailureReason>()) w.WriteNumber(Metrics.ReasonLabel(r), s.Failures(r));
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteStartArray("batch_stats");
        for (int b = 1; b <= s.MaxBatchSize; b++)
        {
            var (count, ns) = s.ByBatchSize(b);
            if (count == 0) continue;
            w.WriteStartObject();
            w.WriteNumber("batch_size", b);
            Duration(w, "compute_infer", count, ns);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndArray();
    });

    async Task Page(HttpContext ctx)
    {
        var html = ReadResource("index.html").Replace("{{MODEL}}", WebUtility.HtmlEncode(options.ModelName));
        ctx.Response.Headers.CacheControl = "no-store";
        await Text(ctx, 200, html, "text/html; charset=utf-8").ConfigureAwait(false);
    }

    static Task Resource(HttpContext ctx, string name, string type) => Text(ctx, 200, ReadResource(name), type);

    static string ReadResource(string name)
    {
        using var s = typeof(ModelServer).Assembly.GetManifestResourceStream("Xception.Gpu.Cli.Serving." + name)
            ?? throw new InvalidOperationException($"resource {name} is missing from the build");
        return new StreamReader(s).ReadToEnd();
    }

    Task Unavailable(HttpContext ctx, string why)
    {
        ctx.Response.Headers.RetryAfter = options.RetryAfterSeconds.ToString();
        return Error(ctx, 503, why);
    }

    static Task Error(HttpContext ctx, int status, string message) => Json(ctx, status, w => w.WriteString("error", message));

    static async Task Json(HttpContext ctx, int status, Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        ctx.Response.ContentLength = buffer.WrittenCount;
        await ctx.Response.Body.WriteAsync(buffer.WrittenMemory).ConfigureAwait(false);
    }

    static async Task Text(HttpContext ctx, int status, string text, string type)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = type;
        ctx.Response.ContentLength = bytes.Length;
        await ctx.Response.Body.WriteAsync(bytes).ConfigureAwait(false);
    }

    static string Clip(string s) => s.Length > 60 ? s[..60] + "..." : s;

    /// <summary>A host lifetime that listens to no signal (see <see cref="StartAsync"/>).</summary>
    sealed class NoSignals : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
