using Xception.Gpu.Imaging;
using Xception.Gpu.Serving;

namespace Xception.Gpu.Cli.Serving;

/// <summary>Everything `xception serve` is told, checked; the server reads nothing else.</summary>
sealed record ServeOptions
{
    /// <summary>Where Kestrel listens; loopback unless said otherwise.</summary>
    public IReadOnlyList<string> Urls { get; init; } = ["http://127.0.0.1:8080"];

    /// <summary>The classifier's name in every path; the embedding model is "{ModelName}-features".</summary>
    public string ModelName { get; init; } = "xception";

    public BatchingOptions Batching { get; init; } = new();

    /// <summary>The status of a request refused for load: 503 (Triton, TorchServe) or 429.</summary>
    public int OverloadStatus { get; init; } = 503;

    /// <summary>Seconds a refused client is told to wait (Retry-After).</summary>
    public int RetryAfterSeconds { get; init; } = 1;

    /// <summary>When set, every endpoint but the health checks, the page and the API description needs "Authorization: Bearer KEY".</summary>
    public string? ApiKey { get; init; }

    /// <summary>The largest request body, in bytes.</summary>
    public long MaxBodyBytes { get; init; } = 32L << 20;

    /// <summary>The deepest nesting a JSON body may have.</summary>
    public int MaxJsonDepth { get; init; } = 16;

    /// <summary>Classes returned by /predictions when the request does not say.</summary>
    public int DefaultTop { get; init; } = 5;

    public ResizeMode Resize { get; init; } = ResizeMode.Bilinear;

    /// <summary>How long a shutdown waits for the requests already accepted.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public string FeaturesName => ModelName + "-features";
}

/// <summary>A model behind the server: its name in paths, its batcher, its input and output as the v2 protocol names them.</summary>
sealed class ServedModel(string name, DynamicBatcher batcher)
{
    public string Name { get; } = name;
    public DynamicBatcher Batcher { get; } = batcher;
    public Inference.XceptionModel Model => Batcher.Model;
    public bool IsClassifier => Model.Config.IncludeTop;

    /// <summary>The tensor input: Keras' input layer's name.</summary>
    public string InputName => Model.Model.Input.Name;

    /// <summary>The output: Keras' last layer's name (predictions, or avg_pool / max_pool for embeddings).</summary>
    public string OutputName => Model.Model.Output.Name;

    /// <summary>Values per output row.</summary>
    public int OutputSize => Batcher.OutputSize;

    public const string ImageInputName = "image";
    public const string Version = "1";
}
