using System.Net;
using System.Text.Json;
using Xception.Gpu.Cli.Serving;
using Xception.Gpu.Imaging;
using Xception.Gpu.Serving;
using Xception.Gpu.Tests.Inference;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Serving;

/// <summary>Every endpoint of `xception serve` and every error status, through a real Kestrel server on loopback.</summary>
public class ProtocolTests
{
    static byte[] Png(int seed = 0, int w = 90, int h = 80)
    {
        using var dir = new TempDir();
        return File.ReadAllBytes(InferenceApiTests.WritePng(dir, "x.png", w, h, seed));
    }

    /// <summary>The image as the server preprocesses it (bilinear to 71 x 71, Keras 'tf' mode).</summary>
    static float[] Preprocessed(byte[] png)
    {
        var x = new float[71 * 71 * 3];
        Preprocess.DecodeKerasTf("x", png, 71, x, 0, ResizeMode.Bilinear);
        return x;
    }

    [Fact]
    public async Task HealthMetadataAndStatistics()
    {
        await using var host = await ServerHost.Start();
        Assert.Equal(200, (await host.GetJson("/v2/health/live")).Status);
        var (status, ready) = await host.GetJson("/v2/health/ready");
        Assert.Equal(200, status);
        Assert.True(ready.GetProperty("ready").GetBoolean());
        Assert.Equal(200, (await host.GetJson("/ping")).Status);

        var (_, server) = await host.GetJson("/v2");
        Assert.Equal("xception-gpu", server.GetProperty("name").GetString());
        Assert.Contains("classification", server.GetProperty("extensions").EnumerateArray().Select(e => e.GetString()));

        var (s, meta) = await host.GetJson("/v2/models/xception");
        Assert.Equal(200, s);
        var input = meta.GetProperty("inputs")[0];
        Assert.Equal("input_1", input.GetProperty("name").GetString());
        Assert.Equal("FP32", input.GetProperty("datatype").GetString());
        Assert.Equal([-1, 71, 71, 3], input.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("image", meta.GetProperty("inputs")[1].GetProperty("name").GetString());
        var output = meta.GetProperty("outputs")[0];
        Assert.Equal("predictions", output.GetProperty("name").GetString());
        Assert.Equal([-1, 10], output.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        var (_, features) = await host.GetJson("/v2/models/xception-features");
        Assert.Equal("avg_pool", features.GetProperty("outputs")[0].GetProperty("name").GetString());
        Assert.Equal([-1, 2048], features.GetProperty("outputs")[0].GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(200, (await host.GetJson("/v2/models/xception/ready")).Status);
        Assert.Equal(200, (await host.GetJson("/v2/models/xception/versions/1/ready")).Status);
        var (missing, why) = await host.GetJson("/v2/models/xception/versions/2");
        Assert.Equal(404, missing);
        Assert.Equal("model 'xception' has version 1 only, not '2'", why.GetProperty("error").GetString());

        // One inference, then the statistics count it.
        using (var r = await host.PostBytes("/predictions/xception", Png())) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var (_, stats) = await host.GetJson("/v2/models/xception/stats");
        var m = stats.GetProperty("model_stats")[0];
        Assert.Equal(1, m.GetProperty("inference_count").GetInt64()); // the warm-up runs are not requests
        Assert.Equal(1, m.GetProperty("execution_count").GetInt64());
        Assert.Equal(1, m.GetProperty("inference_stats").GetProperty("success").GetProperty("count").GetInt64());
        Assert.True(m.GetProperty("inference_stats").GetProperty("compute_infer").GetProperty("ns").GetInt64() > 0);
        Assert.Equal(1, m.GetProperty("batch_stats")[0].GetProperty("batch_size").GetInt32());
    }

    [Fact]
    public async Task InferReturnsTheModelsProbabilitiesAndClassifications()
    {
        await using var host = await ServerHost.Start();
        var png = Png(1);
        var x = Preprocessed(png);
        var want = host.Classifier.Model.Probabilities(x, 1);

        // FP32 tensor, nested as [1][71][71][3] would be; the response echoes the id.
        var nested = JsonSerializer.Serialize(Enumerable.Range(0, 71).Select(r => Enumerable.Range(0, 71).Select(c => x.AsSpan((r * 71 + c) * 3, 3).ToArray())));
        var (status, body) = await host.PostJson("/v2/models/xception/infer",
            $$"""{"id":"req-7","inputs":[{"name":"input_1","shape":[1,71,71,3],"datatype":"FP32","data":[{{nested}}]}]}""");
        Assert.True(status == 200, body.ToString());
        Assert.Equal("req-7", body.GetProperty("id").GetString());
        var output = body.GetProperty("outputs")[0];
        Assert.Equal("predictions", output.GetProperty("name").GetString());
        Assert.Equal([1, 10], output.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(want, output.GetProperty("data").EnumerateArray().Select(e => e.GetSingle()));

        // Image bytes as BYTES (base64), two images, with the classification extension.
        var png2 = Png(2);
        var both = host.Classifier.Model.Probabilities([.. x, .. Preprocessed(png2)], 2);
        (status, body) = await host.PostJson("/v2/models/xception/infer",
            $$$"""{"inputs":[{"name":"image","shape":[2],"datatype":"BYTES","data":["{{{Convert.ToBase64String(png)}}}",{"b64":"{{{Convert.ToBase64String(png2)}}}"}]}],"parameters":{"classification":3}}""");
        Assert.True(status == 200, body.ToString());
        output = body.GetProperty("outputs")[0];
        Assert.Equal("BYTES", output.GetProperty("datatype").GetString());
        Assert.Equal([2, 3], output.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        var strings = output.GetProperty("data").EnumerateArray().Select(e => e.GetString()!).ToList();
        for (int image = 0; image < 2; image++)
        {
            var top = host.Classifier.Model.Top(both.AsSpan(image * 10, 10), 3);
            for (int k = 0; k < 3; k++)
                Assert.Equal($"{InferRequest.Score(top[k].Probability)}:{top[k].Index}:{top[k].Label}", strings[image * 3 + k]);
        }

        // The embedding model: the pooled features.
        using var features = XceptionModelFeatures(host);
        (status, body) = await host.PostJson("/v2/models/xception-features/infer",
            $$"""{"inputs":[{"name":"image","shape":[1,1],"datatype":"BYTES","data":[["{{Convert.ToBase64String(png)}}"]]}]}""");
        Assert.Equal(200, status);
        Assert.Equal(features.Features(x, 1), body.GetProperty("outputs")[0].GetProperty("data").EnumerateArray().Select(e => e.GetSingle()));
    }

    static Gpu.Inference.XceptionModel XceptionModelFeatures(ServerHost host) => Gpu.Inference.XceptionModel.LoadFeatures(ServerHost.Weights, "cpu", 71);

    [Fact]
    public async Task PredictionsExplanationsAndTheirForms()
    {
        await using var host = await ServerHost.Start();
        var png = Png(3, 120, 97);
        var want = host.Classifier.Model.Top(host.Classifier.Model.Probabilities(Preprocessed(png), 1), 4);

        using (var r = await host.PostBytes("/predictions/xception?top=4", png, "image/png"))
        {
            var json = await ServerHost.Json(r);
            var got = json.GetProperty("predictions").EnumerateArray().ToList();
            Assert.Equal(4, got.Count);
            for (int k = 0; k < 4; k++)
            {
                Assert.Equal(want[k].Index, got[k].GetProperty("index").GetInt32());
                Assert.Equal(want[k].Label, got[k].GetProperty("label").GetString());
                Assert.Equal(want[k].Probability, got[k].GetProperty("probability").GetSingle());
            }
        }
        // A multipart form (curl -F data=@image.png) gives the same; the default is the top 5.
        using (var form = new MultipartFormDataContent())
        {
            form.Add(new ByteArrayContent(png), "data", "image.png");
            using var r = await host.Client.PostAsync("/predictions/xception", form);
            var got = (await ServerHost.Json(r)).GetProperty("predictions").EnumerateArray().ToList();
            Assert.Equal(5, got.Count);
            Assert.Equal(want[0].Index, got[0].GetProperty("index").GetInt32());
        }
        // The embedding through /predictions.
        using (var r = await host.PostBytes("/predictions/xception-features", png))
            Assert.Equal(2048, (await ServerHost.Json(r)).GetProperty("embedding").GetArrayLength());

        // Grad-CAM: a PNG the size of the upload, different from it, for the class asked (else the top class).
        foreach (var (query, cls) in new[] { ("?class=7", 7), ("", want[0].Index) })
        {
            using var r = await host.PostBytes("/explanations/xception" + query, png);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal("image/png", r.Content.Headers.ContentType?.MediaType);
            Assert.Equal(cls.ToString(), r.Headers.GetValues("X-Class").Single());
            var overlay = ImageLoader.Decode("overlay", await r.Content.ReadAsByteArrayAsync());
            var input = ImageLoader.Decode("input", png);
            Assert.Equal((input.Width, input.Height), (overlay.Width, overlay.Height));
            Assert.False(input.Pixels.AsSpan().SequenceEqual(overlay.Pixels), "the overlay is the input unchanged");
            var want2 = host.Classifier.Model.Explain(Preprocessed(png), 1, cls)[0].Overlay(input);
            Assert.True(want2.Pixels.AsSpan().SequenceEqual(overlay.Pixels), "the overlay differs from the library's");
        }
    }

    [Fact]
    public async Task MetricsThePageAndTheApiDescription()
    {
        await using var host = await ServerHost.Start();
        using (var r = await host.PostBytes("/predictions/xception", Png())) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        using (var r = await host.PostBytes("/predictions/xception", [1, 2, 3])) Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        const string labels = "model=\"xception\",version=\"1\"";
        Assert.Equal(1, await host.Metric($"nv_inference_request_success{{{labels}}}"));
        Assert.Equal(1, await host.Metric($"nv_inference_request_failure{{{labels},reason=\"BAD_INPUT\"}}"));
        Assert.Equal(0, await host.Metric($"nv_inference_request_failure{{{labels},reason=\"REJECTED\"}}"));
        Assert.Equal(1, await host.Metric($"nv_inference_count{{{labels}}}"));
        Assert.Equal(1, await host.Metric($"nv_inference_exec_count{{{labels}}}"));
        Assert.Equal(0, await host.Metric($"nv_inference_pending_request_count{{{labels}}}"));
        Assert.True(await host.Metric($"nv_inference_compute_infer_duration_us{{{labels}}}") > 0);
        Assert.Equal(2, await host.Metric($"xception_request_duration_seconds_count{{{labels}}}"));
        Assert.Equal(1, await host.Metric($"xception_batch_size_bucket{{{labels},le=\"1\"}}"));
        var text = await host.Client.GetStringAsync("/metrics");
        Assert.Contains("# TYPE nv_inference_count counter", text);
        Assert.Contains("# TYPE xception_batch_size histogram", text);

        var page = await host.Client.GetStringAsync("/");
        Assert.Contains("<meta name=\"xception-model\" content=\"xception\">", page);
        Assert.DoesNotContain("http://", page.Replace("http://www.w3.org", "")); // nothing fetched from elsewhere
        Assert.DoesNotContain("https://", page);

        // The API description lists exactly the routes the server maps.
        var api = JsonDocument.Parse(await host.Client.GetStringAsync("/openapi.json")).RootElement;
        var described = api.GetProperty("paths").EnumerateObject().SelectMany(p => p.Value.EnumerateObject().Select(m => $"{m.Name.ToUpperInvariant()} {p.Name}")).Order().ToList();
        Assert.Equal(host.Server.Routes.Order(), described);
    }

    [Fact]
    public async Task EveryErrorHasItsStatusAndOneLineSayingWhy()
    {
        await using var host = await ServerHost.Start(new ServeOptions { MaxBodyBytes = 200_000, Batching = new BatchingOptions { MaxBatchSize = 2 } });
        async Task Expect(int status, string contains, Task<HttpResponseMessage> request)
        {
            using var r = await request;
            var json = await ServerHost.Json(r);
            Assert.True((int)r.StatusCode == status, $"{(int)r.StatusCode} instead of {status}: {json}");
            var error = json.GetProperty("error").GetString()!;
            Assert.Contains(contains, error);
            Assert.DoesNotContain("\n", error);
        }
        HttpContent Json(string s) => new StringContent(s, System.Text.Encoding.UTF8, "application/json");
        var c = host.Client;
        string b64 = Convert.ToBase64String(Png());

        await Expect(404, "unknown model 'resnet'; this server serves 'xception', 'xception-features'", c.PostAsync("/predictions/resnet", new ByteArrayContent(Png())));
        await Expect(404, "unknown model 'resnet'", c.GetAsync("/v2/models/resnet"));
        await Expect(404, "no endpoint GET /nowhere", c.GetAsync("/nowhere"));
        await Expect(400, "is not an image or is corrupt", host.PostBytes("/predictions/xception", [1, 2, 3, 4, 5]));
        await Expect(400, "empty (0 bytes)", host.PostBytes("/predictions/xception", []));
        await Expect(400, "'top' must be a whole number from 1 to 10, got '11'", host.PostBytes("/predictions/xception?top=11", Png()));
        await Expect(400, "'class' must be a whole number from 0 to 9, got '-1'", host.PostBytes("/explanations/xception?class=-1", Png()));
        await Expect(400, "Grad-CAM needs a layer with a height x width x channels output, not 'predictions'", host.PostBytes("/explanations/xception?layer=predictions", Png()));
        await Expect(400, "not valid JSON", c.PostAsync("/v2/models/xception/infer", Json("{\"inputs\": [")));
        await Expect(400, "not valid JSON (at most 16 levels deep)", c.PostAsync("/v2/models/xception/infer", Json(new string('[', 40) + new string(']', 40))));
        await Expect(400, "\"inputs\" must be an array of one tensor", c.PostAsync("/v2/models/xception/infer", Json("{}")));
        await Expect(400, "has no input 'pixels'", c.PostAsync("/v2/models/xception/infer", Json("""{"inputs":[{"name":"pixels","shape":[1],"datatype":"FP32","data":[1]}]}""")));
        await Expect(400, "has shape [N, 71, 71, 3], got [1, 70, 71, 3]", c.PostAsync("/v2/models/xception/infer", Json("""{"inputs":[{"name":"input_1","shape":[1,70,71,3],"datatype":"FP32","data":[1]}]}""")));
        await Expect(400, "is FP32, got INT8", c.PostAsync("/v2/models/xception/infer", Json("""{"inputs":[{"name":"input_1","shape":[1,71,71,3],"datatype":"INT8","data":[1]}]}""")));
        await Expect(400, "1 to 2 images (the max batch size), got 3", c.PostAsync("/v2/models/xception/infer", Json("""{"inputs":[{"name":"input_1","shape":[3,71,71,3],"datatype":"FP32","data":[1]}]}""")));
        await Expect(400, "value 1 is \"a\"; expected a finite number", c.PostAsync("/v2/models/xception/infer", Json("""{"inputs":[{"name":"input_1","shape":[1,71,71,3],"datatype":"FP32","data":[1,"a"]}]}""")));
        await Expect(400, "holds 2 values; its shape [1, 71, 71, 3] needs 15123", c.PostAsync("/v2/models/xception/infer", Json("""{"inputs":[{"name":"input_1","shape":[1,71,71,3],"datatype":"FP32","data":[1,2]}]}""")));
        await Expect(400, "image 0 is not valid base64", c.PostAsync("/v2/models/xception/infer", Json("""{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["%%%"]}]}""")));
        await Expect(400, "holds 2 elements; its shape says 1", c.PostAsync("/v2/models/xception/infer", Json($$"""{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["{{b64}}","{{b64}}"]}]}""")));
        await Expect(400, "classification must be a whole number from 1 to 10", c.PostAsync("/v2/models/xception/infer", Json($$$"""{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["{{{b64}}}"]}],"parameters":{"classification":0}}""")));
        await Expect(400, "gives embeddings, not classes", c.PostAsync("/v2/models/xception-features/infer", Json($$$"""{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["{{{b64}}}"]}],"parameters":{"classification":2}}""")));
        await Expect(400, "has one output, 'predictions'; the request asks for 'logits'", c.PostAsync("/v2/models/xception/infer", Json($$"""{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["{{b64}}"]}],"outputs":[{"name":"logits"}]}""")));
        await Expect(400, "the form holds no file", c.PostAsync("/predictions/xception", new MultipartFormDataContent { { new StringContent("x"), "other" } }));
        // Over the 200,000-byte limit: declared (Content-Length) and streamed (chunked) both give 413.
        await Expect(413, "larger than the limit of 200,000 bytes", host.PostBytes("/predictions/xception", new byte[300_000]));
        var chunked = new StreamContent(new MemoryStream(new byte[300_000]));
        var request = new HttpRequestMessage(HttpMethod.Post, "/predictions/xception") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        await Expect(413, "larger than the limit", c.SendAsync(request));

        // The server is still ready and serving.
        using (var r = await host.PostBytes("/predictions/xception", Png())) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }

    [Fact]
    public async Task AnApiKeyGuardsEverythingButHealthThePageAndTheDescription()
    {
        await using var host = await ServerHost.Start(new ServeOptions { ApiKey = "s3cret-key" }, features: false);
        foreach (var open in new[] { "/v2/health/live", "/v2/health/ready", "/", "/openapi.json", "/ping" })
            Assert.Equal(HttpStatusCode.OK, (await host.Client.GetAsync(open)).StatusCode);
        using (var r = await host.Client.GetAsync("/metrics"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Equal("Bearer", r.Headers.WwwAuthenticate.Single().Scheme);
            Assert.Contains("Authorization: Bearer KEY", (await ServerHost.Json(r)).GetProperty("error").GetString());
        }
        host.Client.DefaultRequestHeaders.Authorization = new("Bearer", "wrong-key!");
        Assert.Equal(HttpStatusCode.Unauthorized, (await host.PostBytes("/predictions/xception", Png())).StatusCode);
        host.Client.DefaultRequestHeaders.Authorization = new("Bearer", "s3cret-key");
        Assert.Equal(HttpStatusCode.OK, (await host.PostBytes("/predictions/xception", Png())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await host.Client.GetAsync("/v2/models/xception/stats")).StatusCode);
        // Without the features model, its name is unknown.
        Assert.Equal(HttpStatusCode.NotFound, (await host.PostBytes("/predictions/xception-features", Png())).StatusCode);
    }

    [Fact]
    public async Task NotReadyWhileLoading()
    {
        var gate = new ManualResetEventSlim();
        var options = new ServeOptions { Urls = ["http://127.0.0.1:0"] };
        await using var server = await ModelServer.StartAsync(options, () =>
        {
            gate.Wait();
            return [new ServedModel("xception", new DynamicBatcher(Gpu.Inference.XceptionModel.Load(ServerHost.Weights, "cpu", 71), options.Batching))];
        });
        using var client = new HttpClient { BaseAddress = new Uri(server.Addresses.Single()) };
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v2/health/live")).StatusCode);
        using (var r = await client.GetAsync("/v2/health/ready"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
            Assert.Contains("loading", (await ServerHost.Json(r)).GetProperty("error").GetString());
        }
        using (var r = await client.PostAsync("/predictions/xception", new ByteArrayContent(Png())))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
            Assert.NotNull(r.Headers.RetryAfter);
        }
        gate.Set();
        await server.Loaded.WaitAsync(TimeSpan.FromMinutes(3));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v2/health/ready")).StatusCode);
    }
}
