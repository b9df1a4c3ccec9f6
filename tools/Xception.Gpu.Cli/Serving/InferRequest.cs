using System.Globalization;
using System.Text.Json;
using Xception.Gpu.Imaging;
using Xception.Gpu.Serving;

namespace Xception.Gpu.Cli.Serving;

/// <summary>
/// A v2 (Open Inference Protocol) JSON inference request, read and checked against a model:
/// <c>{"id": "...", "parameters": {"classification": K}, "inputs": [{"name", "shape", "datatype", "data"}],
/// "outputs": [{"name", "parameters": {"classification": K}}]}</c>. One input: the model's FP32 NHWC tensor
/// (data flat or nested, row-major) or "image", BYTES of shape [N] or [N, 1] whose elements are encoded image files
/// in base64 (a string, or TF Serving's <c>{"b64": "..."}</c>). Every problem is a <see cref="BadRequestException"/>
/// naming what was wrong and what was expected; nothing is allocated beyond what the checked shape needs.
/// </summary>
sealed class InferRequest
{
    public string? Id { get; private init; }
    public required float[] Input { get; init; }
    public int Count { get; init; }

    /// <summary>The classification extension's K, or null for the raw output tensor.</summary>
    public int? Classification { get; init; }

    public static InferRequest Parse(byte[] body, ServedModel model, ServeOptions options)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = options.MaxJsonDepth });
        }
        catch (JsonException e)
        {
            throw new BadRequestException($"the body is not valid JSON (at most {options.MaxJsonDepth} levels deep): {OneLine(e.Message)}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new BadRequestException("the body must be a JSON object with \"inputs\"");
            string? id = root.TryGetProperty("id", out var idElement) ? (idElement.ValueKind == JsonValueKind.String ? idElement.GetString() : idElement.GetRawText()) : null;
            int? k = ClassificationOf(root, "the request's parameters", model);
            if (root.TryGetProperty("outputs", out var outputs))
            {
                if (outputs.ValueKind != JsonValueKind.Array) throw new BadRequestException("\"outputs\" must be an array");
                foreach (var o in outputs.EnumerateArray())
                {
                    var name = o.ValueKind == JsonValueKind.Object && o.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
                    if (name != model.OutputName)
                        throw new BadRequestException($"model '{model.Name}' has one output, '{model.OutputName}'; the request asks for '{name}'");
                    k = ClassificationOf(o, $"output '{name}'s parameters", model) ?? k;
                }
            }
            if (!root.TryGetProperty("inputs", out var inputs) || inputs.ValueKind != JsonValueKind.Array || inputs.GetArrayLength() != 1)
                throw new BadRequestException($"\"inputs\" must be an array of one tensor: '{model.InputName}' (FP32, {Shape(model)}) or '{ServedModel.ImageInputName}' (BYTES, [N], base64 image files)");
            var input = inputs[0];
            if (input.ValueKind != JsonValueKind.Object) throw new BadRequestException("an input must be an object with name, shape, datatype and data");
            string inputName = Text(input, "name");
            string datatype = Text(input, "datatype");
            var shape = ShapeOf(input);
            if (!input.TryGetProperty("data", out var data)) throw new BadRequestException($"input '{inputName}' has no \"data\"");
            var (values, count) = inputName == model.InputName ? Tensor(model, options, datatype, shape, data)
                : inputName == ServedModel.ImageInputName ? Images(model, options, datatype, shape, data)
                : throw new BadRequestException($"model '{model.Name}' has no input '{inputName}': expected '{model.InputName}' (FP32, {Shape(model)}) or '{ServedModel.ImageInputName}' (BYTES, [N])");
            return new InferRequest { Id = id, Input = values, Count = count, Classification = k };
        }
    }

    static string Shape(ServedModel m) => $"[N, {m.Model.ImageSize}, {m.Model.ImageSize}, {m.Model.Config.InputChannels}]";

    static int? ClassificationOf(JsonElement owner, string where, ServedModel model)
    {
        if (!owner.TryGetProperty("parameters", out var p)) return null;
        if (p.ValueKind != JsonValueKind.Object) throw new BadRequestException($"{where} must be an object");
        if (!p.TryGetProperty("classification", out var c)) return null;
        if (!model.IsClassifier) throw new BadRequestException($"model '{model.Name}' gives embeddings, not classes: the classification parameter does not apply");
        if (c.ValueKind != JsonValueKind.Number || !c.TryGetInt32(out int k) || k < 1 || k > model.Model.Config.Classes)
            throw new BadRequestException($"classification must be a whole number from 1 to {model.Model.Config.Classes} (the classes), got {c.GetRawText()}");
        return k;
    }

    static string Text(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new BadRequestException($"an input needs \"{name}\" as a string");

    static long[] ShapeOf(JsonElement input)
    {
        if (!input.TryGetProperty("shape", out var s) || s.ValueKind != JsonValueKind.Array || s.GetArrayLength() is 0 or > 8)
            throw new BadRequestException("an input needs \"shape\": an array of 1 to 8 whole numbers");
        var shape = new long[s.GetArrayLength()];
        for (int i = 0; i < shape.Length; i++)
            if (s[i].ValueKind != JsonValueKind.Number || !s[i].TryGetInt64(out shape[i]) || shape[i] < 0)
                throw new BadRequestException($"shape element {i} must be a whole number >= 0, got {s[i].GetRawText()}");
        return shape;
    }

    static (float[], int) Tensor(ServedModel model, ServeOptions options, string datatype, long[] shape, JsonElement data)
    {
        var m = model.Model;
        long[] want = [m.ImageSize, m.ImageSize, m.Config.InputChannels];
        if (datatype != "FP32") throw new BadRequestException($"input '{model.InputName}' is FP32, got {datatype}");
        if (shape.Length != 4 || shape[1] != want[0] || shape[2] != want[1] || shape[3] != want[2])
            throw new BadRequestException($"input '{model.InputName}' has shape {Shape(model)}, got [{string.Join(", ", shape)}]");
        int max = options.Batching.MaxBatchSize;
        if (shape[0] < 1 || shape[0] > max)
            throw new BadRequestException($"a request holds 1 to {max} images (the max batch size), got {shape[0]}");
        int count = (int)shape[0];
        long n = count * want[0] * want[1] * want[2];
        var values = new float[n];
        long at = 0;
        Flatten(data, values, ref at, 0, model.InputName);
        if (at != n) throw new BadRequestException($"input '{model.InputName}' holds {at} values; its shape [{string.Join(", ", shape)}] needs {n}");
        return (values, count);
    }

    /// <summary>Row-major values of a flat or nested array into <paramref name="values"/>, refusing more than it holds.</summary>
    static void Flatten(JsonElement e, float[] values, ref long at, int depth, string name)
    {
        if (e.ValueKind != JsonValueKind.Array) throw new BadRequestException($"input '{name}': \"data\" must be an array of numbers");
        foreach (var v in e.EnumerateArray())
        {
            if (v.ValueKind == JsonValueKind.Array) { Flatten(v, values, ref at, depth + 1, name); continue; }
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetSingle(out float f) || !float.IsFinite(f))
                throw new BadRequestException($"input '{name}' value {at} is {Clip(v.GetRawText())}; expected a finite number");
            if (at >= values.Length) throw new BadRequestException($"input '{name}' holds more than the {values.Length} values its shape needs");
            values[at++] = f;
        }
    }

    static (float[], int) Images(ServedModel model, ServeOptions options, string datatype, long[] shape, JsonElement data)
    {
        if (datatype != "BYTES") throw new BadRequestException($"input '{ServedModel.ImageInputName}' is BYTES (base64 image files), got {datatype}");
        if (!(shape.Length == 1 || shape.Length == 2 && shape[1] == 1))
            throw new BadRequestException($"input '{ServedModel.ImageInputName}' has shape [N] or [N, 1], got [{string.Join(", ", shape)}]");
        int max = options.Batching.MaxBatchSize;
        if (shape[0] < 1 || shape[0] > max)
            throw new BadRequestException($"a request holds 1 to {max} images (the max batch size), got {shape[0]}");
        var items = new List<JsonElement>();
        Collect(data, items, (int)shape[0]);
        if (items.Count != shape[0]) throw new BadRequestException($"input '{ServedModel.ImageInputName}' holds {items.Count} elements; its shape says {shape[0]}");
        int size = model.Model.ImageSize;
        if (model.Model.Config.InputChannels != 3) throw new BadRequestException($"model '{model.Name}' takes {model.Model.Config.InputChannels} channels, not RGB images");
        var values = new float[(long)items.Count * size * size * 3];
        for (int i = 0; i < items.Count; i++)
        {
            var b64 = items[i].ValueKind == JsonValueKind.String ? items[i].GetString()
                : items[i].ValueKind == JsonValueKind.Object && items[i].TryGetProperty("b64", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()
                : throw new BadRequestException($"image {i} must be a base64 string or {{\"b64\": \"...\"}}");
            byte[] bytes;
            try { bytes = Convert.FromBase64String(b64!); }
            catch (FormatException) { throw new BadRequestException($"image {i} is not valid base64"); }
            Decode($"image {i}", bytes, model, options, values, i);
        }
        return (values, items.Count);
    }

    static void Collect(JsonElement e, List<JsonElement> items, int limit)
    {
        if (e.ValueKind != JsonValueKind.Array) throw new BadRequestException($"input '{ServedModel.ImageInputName}': \"data\" must be an array");
        foreach (var v in e.EnumerateArray())
        {
            if (v.ValueKind == JsonValueKind.Array) Collect(v, items, limit);
            else if (items.Count < limit + 1) items.Add(v);
        }
    }

    /// <summary>Decodes one uploaded image into batch item <paramref name="index"/>; a bad image is bad input, named as <paramref name="name"/>.</summary>
    public static void Decode(string name, byte[] bytes, ServedModel model, ServeOptions options, float[] batch, int index)
    {
        if (bytes.Length == 0) throw new BadRequestException($"{name} is empty (0 bytes); expected an image file ({ImageLoader.Supported})");
        try
        {
            Preprocess.DecodeKerasTf(name, bytes, model.Model.ImageSize, batch, index, options.Resize);
        }
        catch (ImageException e)
        {
            throw new BadRequestException(e.Message, e);
        }
    }

    static string Clip(string s) => s.Length > 40 ? s[..40] + "..." : s;

    static string OneLine(string s) => s.ReplaceLineEndings(" ");

    /// <summary>A probability as the classification strings print it.</summary>
    public static string Score(float p) => p.ToString("0.######", CultureInfo.InvariantCulture);
}
