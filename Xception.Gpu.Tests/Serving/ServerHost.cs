using System.Net.Http.Headers;
using System.Text.Json;
using Xception.Gpu.Cli.Serving;
using Xception.Gpu.Inference;
using Xception.Gpu.Serving;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xunit;

namespace Xception.Gpu.Tests.Serving;

/// <summary>
/// The `xception serve` server started in this process on a free loopback port (real Kestrel, real sockets), with
/// a checkpoint of 10 classes at 71 x 71 (<see cref="Weights"/>) on the CPU accelerator, and a client for it.
/// </summary>
sealed class ServerHost : IAsyncDisposable
{
    ServerHost(ModelServer server, string url)
    {
        Server = server;
        Url = url;
        Client = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(3) };
    }

    public ModelServer Server { get; }
    public string Url { get; }
    public HttpClient Client { get; }

    public ServedModel Classifier => Server.Models.First(m => m.IsClassifier);

    static readonly Lazy<string> weights = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("xception-serve-").FullName;
        var path = Path.Combine(dir, "xception_c10_71.safetensors");
        var config = new XceptionConfig { Classes = 10, ImageSize = 71 };
        using var model = XceptionBuilder.Build(config);
        model.Initialize(seed: 11);
        ModelWeights.Save(model, config, path);
        return path;
    });

    /// <summary>A checkpoint of Xception with 10 classes at 71 x 71 (Keras' initial weights, seed 11), written once per run.</summary>
    public static string Weights => weights.Value;

    public static async Task<ServerHost> Start(ServeOptions? options = null, bool features = true, bool waitReady = true)
    {
        options = (options ?? new ServeOptions()) with { Urls = ["http://127.0.0.1:0"] };
        var weights = Weights;
        var server = await ModelServer.StartAsync(options, () =>
        {
            var served = new List<ServedModel> { new(options.ModelName, new DynamicBatcher(XceptionModel.Load(weights, "cpu", 71), options.Batching)) };
            if (features) served.Add(new(options.FeaturesName, new DynamicBatcher(XceptionModel.LoadFeatures(weights, "cpu", 71), options.Batching)));
            return served;
        });
        if (waitReady) await server.Loaded.WaitAsync(TimeSpan.FromMinutes(3));
        return new ServerHost(server, server.Addresses.Single());
    }

    public async Task<(int Status, JsonElement Json)> GetJson(string path)
    {
        using var r = await Client.GetAsync(path);
        return ((int)r.StatusCode, await Json(r));
    }

    public async Task<(int Status, JsonElement Json)> PostJson(string path, string body)
    {
        using var r = await Client.PostAsync(path, new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        return ((int)r.StatusCode, await Json(r));
    }

    public async Task<HttpResponseMessage> PostBytes(string path, byte[] body, string type = "application/octet-stream")
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(type);
        return await Client.PostAsync(path, content);
    }

    public static async Task<JsonElement> Json(HttpResponseMessage r)
    {
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.Content.Headers.ContentType?.MediaType == "application/json", $"{(int)r.StatusCode}: not JSON: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>The value of a metric line (name and labels exactly as /metrics writes them).</summary>
    public async Task<double> Metric(string series)
    {
        var text = await Client.GetStringAsync("/metrics");
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ")) ?? throw new Xunit.Sdk.XunitException($"no metric {series} in:\n{text}");
        return double.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.StopAsync();
    }
}
