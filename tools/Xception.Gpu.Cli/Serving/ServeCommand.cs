using Xception.Gpu.Imaging;
using Xception.Gpu.Inference;
using Xception.Gpu.Serving;

namespace Xception.Gpu.Cli.Serving;

static class ServeCommand
{
    public static CliCommand Definition => new("serve", "serve the model over HTTP: the v2 inference protocol, /predictions, Grad-CAM, metrics and a web page", Run, """
        xception serve --weights W [--device D] [--image-size S] [--urls http://127.0.0.1:8080] [--model-name xception]
                       [--max-batch-size 8] [--max-queue-delay-us 0] [--max-queue-size 64] [--queue-timeout-ms T]
                       [--api-key K] [--no-features] [--overload-status 503|429] [--max-body-mb 32] [--drain-timeout-s 30]

        Listens at once (GET /v2/health/live) and is ready (GET /v2/health/ready) once the weights are loaded and
        every batch size has run once. Endpoints: GET / (the web page), GET /openapi.json, GET /v2,
        GET /v2/models/NAME[/ready|/stats], POST /v2/models/NAME/infer, POST /predictions/NAME (image bytes or
        a multipart form; ?top=K), POST /explanations/NAME (the Grad-CAM overlay as PNG; ?class=K), GET /metrics
        (Prometheus). NAME is the model name (default xception), or NAME-features for the image embeddings.
        Requests from all clients are stacked into device batches of at most --max-batch-size images; each
        gets bit for bit the result it would get alone. A full queue or an expired queue timeout answers 503
        (or --overload-status) with Retry-After at once. Ctrl-C or SIGTERM drains: readiness turns 503, new
        work is refused, the requests already accepted are answered, then the command exits 0.
        """)
    {
        Value("weights", "W", "a Keras .h5 or an Xception.Gpu checkpoint (required)"),
        DeviceOption(),
        PrecisionOption.Declare(),
        Value("image-size", "S", "input size S x S (default 299, or the checkpoint's)"),
        Value("urls", "URLS", "where to listen, ';'-separated (default http://127.0.0.1:8080; port 0 picks a free one)"),
        Value("model-name", "NAME", "the model's name in paths (default xception)"),
        Value("max-batch-size", "N", "the most images per device batch, and per request (default 8)"),
        Value("max-queue-delay-us", "US", "how long a request may wait for a batch to fill (default 0: take what is queued when the device is free)"),
        Value("max-queue-size", "N", "requests that may wait for the device; more are refused (default 64)"),
        Value("queue-timeout-ms", "MS", "refuse a request still queued after MS milliseconds (default: no limit)"),
        Choice("overload-status", ["503", "429"], "the status of a request refused for load (default 503)"),
        Value("api-key", "K", "require 'Authorization: Bearer K' on everything but the health checks and the page"),
        Flag("no-features", "do not serve the image embeddings (NAME-features; a second copy of the weights)"),
        Choice("resize", ["bilinear", "nearest"], "how uploaded images are resized (default bilinear; nearest as Keras' load_img)"),
        Value("top", "K", "classes /predictions returns when the request does not say (default 5)"),
        Value("max-body-mb", "MB", "the largest request body in MiB (default 32)"),
        Value("drain-timeout-s", "S", "at shutdown, how long to wait for the requests already accepted (default 30)"),
        Value("max-image-pixels", "N", "refuse images that declare more pixels (default 89,478,485, PIL's limit)"),
    };

    static int Run(Args a)
    {
        a.ApplyImageLimit();
        var weights = a.String("weights") ?? throw new UsageException("serve needs --weights (a Keras .h5 file or a checkpoint)");
        if (!File.Exists(weights)) throw new XceptionException($"weights file '{weights}' does not exist");
        var options = Options(a);
        string device = a.String("device", "auto");
        int? size = a.String("image-size") is null ? null : a.Int("image-size", 299, 71, 8192);
        bool features = !a.Flag("no-features");
        var precision = PrecisionOption.Read(a);

        var loaded = new List<XceptionModel>();
        IReadOnlyList<ServedModel> Load()
        {
            var model = XceptionModel.Load(weights, device, size);
            loaded.Add(model);
            model.Precision = precision;
            if (!model.Config.IncludeTop) throw new XceptionException($"'{weights}' has no classifier (a _notop file): serve needs one");
            var served = new List<ServedModel> { new(options.ModelName, new DynamicBatcher(model, options.Batching)) };
            if (features)
            {
                var embed = XceptionModel.LoadFeatures(weights, device, model.ImageSize);
                loaded.Add(embed);
                embed.Precision = precision;
                served.Add(new(options.FeaturesName, new DynamicBatcher(embed, options.Batching)));
            }
            Console.Error.WriteLine($"xception serve: {model.Config.Classes} classes, {model.ImageSize}x{model.ImageSize}, on {model.Device}; warming up batch sizes up to {options.Batching.MaxBatchSize}");
            return served;
        }

        ModelServer server;
        try
        {
            server = ModelServer.StartAsync(options, Load).GetAwaiter().GetResult();
        }
        catch (IOException e)
        {
            throw new XceptionException($"cannot listen on {string.Join(";", options.Urls)}: {e.Message}");
        }
        using var stop = new StopSignal("draining: answering the requests already accepted, refusing new ones");
        foreach (var address in server.Addresses) Console.WriteLine($"xception serve: listening on {address}");
        try
        {
            server.Loaded.WaitAsync(stop.Token).GetAwaiter().GetResult();
            Console.WriteLine($"xception serve: ready ({string.Join(", ", server.Models.Select(m => m.Name))}); Ctrl-C or SIGTERM stops it");
            stop.Token.WaitHandle.WaitOne();
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"xception serve: {stop.Signal} while loading: stopping");
        }
        catch (Exception)
        {
            server.StopAsync().GetAwaiter().GetResult();
            foreach (var m in loaded) m.Dispose();
            throw; // the load failed: its message, exit 1
        }
        var sw = System.Diagnostics.Stopwatch.StartNew();
        server.StopAsync().GetAwaiter().GetResult();
        foreach (var m in loaded) m.Dispose();
        Console.Error.WriteLine($"xception serve: stopped after draining for {sw.Elapsed.TotalSeconds:F1} s");
        return 0;
    }

    static ServeOptions Options(Args a)
    {
        var urls = a.String("urls", "http://127.0.0.1:8080").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var u in urls)
            if (!Uri.TryCreate(u.Replace("*", "localhost").Replace("+", "localhost"), UriKind.Absolute, out var uri) || uri.Scheme != "http")
                throw new UsageException($"--urls takes http://HOST:PORT addresses separated by ';', got '{u}'");
        if (urls.Length == 0) throw new UsageException("--urls needs at least one address, e.g. http://127.0.0.1:8080");
        var name = a.String("model-name", "xception");
        if (!System.Text.RegularExpressions.Regex.IsMatch(name, "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"))
            throw new UsageException($"--model-name takes letters, digits, '.', '_' and '-' (at most 64), got '{name}'");
        var key = a.String("api-key");
        if (key is not null && (key.Length < 8 || key.Any(char.IsWhiteSpace)))
            throw new UsageException("--api-key must be at least 8 characters without spaces");
        var status = a.String("overload-status", "503");
        if (status is not ("503" or "429")) throw new UsageException($"--overload-status must be 503 or 429, got '{status}'");
        var resize = a.String("resize", "bilinear").ToLowerInvariant() switch
        {
            "bilinear" => ResizeMode.Bilinear,
            "nearest" => ResizeMode.Nearest,
            var r => throw new UsageException($"--resize must be bilinear or nearest, got '{r}'"),
        };
        return new ServeOptions
        {
            Urls = urls,
            ModelName = name,
            ApiKey = key,
            OverloadStatus = int.Parse(status),
            Resize = resize,
            DefaultTop = a.Int("top", 5, 1, 100000),
            MaxBodyBytes = (long)a.Int("max-body-mb", 32, 1, 2047) << 20,
            DrainTimeout = TimeSpan.FromSeconds(a.Int("drain-timeout-s", 30, 1, 3600)),
            Batching = new BatchingOptions
            {
                MaxBatchSize = a.Int("max-batch-size", 8, 1, 4096),
                MaxQueueDelayMicroseconds = a.Int("max-queue-delay-us", 0, 0, 10_000_000),
                MaxQueueSize = a.Int("max-queue-size", 64, 1, 1_000_000),
                QueueTimeoutMilliseconds = a.String("queue-timeout-ms") is null ? null : a.Int("queue-timeout-ms", 0, 1, 3_600_000),
            },
        };
    }
}
