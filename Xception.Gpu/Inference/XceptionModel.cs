using Xception.Gpu.Graph;
using Xception.Gpu.Imaging;
using Xception.Gpu.IO;
using Xception.Gpu.Models;
using Xception.Gpu.Ops;

namespace Xception.Gpu.Inference;

/// <summary>One class of a prediction: its index, its label (or "class N" without labels) and probability.</summary>
public sealed record Prediction(int Index, string Label, float Probability);

/// <summary>
/// The embeddable inference library: Xception with weights on a device, classifying images or running raw
/// preprocessed tensors.
/// <code>
/// using var model = XceptionModel.Load("xception_weights_tf_dim_ordering_tf_kernels.h5", device: "auto");
/// foreach (var p in model.Classify("cat.jpg", top: 5))
///     Console.WriteLine($"{p.Label}: {p.Probability:P1}");
/// </code>
/// Thread-safe: one instance serves any number of threads. Calls that arrive while the device is busy are
/// combined into the next run (see <see cref="Run"/>), and every image gets bit for bit the result it gets
/// alone, whatever else runs with it.
/// </summary>
public sealed partial class XceptionModel : IDisposable
{
    readonly Device device;
    readonly bool ownsDevice;

    XceptionModel(Model model, XceptionConfig config, Device device, bool ownsDevice)
    {
        Model = model;
        Config = config;
        this.device = device;
        this.ownsDevice = ownsDevice;
        Labels = config.IncludeTop && config.Classes == 1000 ? ImageNetLabels.All : null;
        calls = new(this, Execute);
    }

    public Model Model { get; }
    public XceptionConfig Config { get; }
    public Device Device => device;
    public int ImageSize => Config.ImageSize;

    /// <summary>Class names: ImageNet's for 1000-class weights, else null (labels read "class N").</summary>
    public IReadOnlyList<string>? Labels { get; set; }

    /// <summary>
    /// Loads weights (Keras .h5 or an Xception.Gpu checkpoint) onto a device. The configuration comes from a
    /// checkpoint, or for a Keras file from its classifier; <paramref name="imageSize"/> overrides the input
    /// size (the same weights run at any size from 71 up).
    /// </summary>
    public static XceptionModel Load(string weights, string device = "auto", int? imageSize = null) =>
        Load(weights, device, imageSize, c => c);

    /// <summary>
    /// Builds the model that <paramref name="weights"/> describe, changed by <paramref name="shape"/> (the
    /// image size is applied after it), and loads the weights into it.
    /// </summary>
    static XceptionModel Load(string weights, string device, int? imageSize, Func<XceptionConfig, XceptionConfig> shape)
    {
        var config = shape(ModelWeights.ConfigOf(weights, new XceptionConfig()));
        if (imageSize is { } s) config = config with { ImageSize = s };
        config = config.Validate();
        var model = XceptionBuilder.Build(config);
        try
        {
            ModelWeights.Load(model, weights);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return OnDevice(model, config, device);
    }

    /// <summary>A model with Keras' initial weights (for training, or tests).</summary>
    public static XceptionModel Create(XceptionConfig config, string device = "auto", int seed = 0)
    {
        var model = XceptionBuilder.Build(config);
        model.Initialize(seed);
        return OnDevice(model, config.Validate(), device);
    }

    static XceptionModel OnDevice(Model model, XceptionConfig config, string device)
    {
        Device d;
        try
        {
            d = Device.Open(device);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        try
        {
            model.Bind(d);
            model.EnsureFits(1, training: false);
        }
        catch
        {
            model.Dispose();
            d.Dispose();
            throw;
        }
        return new XceptionModel(model, config, d, ownsDevice: true);
    }

    /// <summary>
    /// Runs preprocessed NHWC float32 input, <paramref name="count"/> images of ImageSize x ImageSize x
    /// InputChannels, and returns the outputs [count, classes] (logits, or the pooled features without the
    /// classifier). Runs in batches of at most <paramref name="batch"/>. Safe to call from many threads at once
    /// (see <see cref="XceptionModel"/>). Input that holds NaN or an infinity is refused.
    /// </summary>
    public float[] Logits(ReadOnlySpan<float> input, int count, int batch = 16) => Submit(input, count, batch, softmax: false);

    /// <summary>Softmax probabilities [count, classes] for preprocessed input (see <see cref="Logits"/>).</summary>
    public float[] Probabilities(ReadOnlySpan<float> input, int count, int batch = 16)
    {
        if (!Config.IncludeTop) throw new XceptionException("this model has no classifier (include_top is off): use Logits for its features");
        return Submit(input, count, batch, softmax: true);
    }

    float[] Submit(ReadOnlySpan<float> input, int count, int batch, bool softmax)
    {
        CheckInput(input, count, batch);
        return Run(new Request(input.ToArray(), count, batch, softmax));
    }

    /// <summary>Refuses input that is not <paramref name="count"/> whole images of finite values, or a batch below 1.</summary>
    void CheckInput(ReadOnlySpan<float> input, int count, int batch)
    {
        int per = ImageSize * ImageSize * Config.InputChannels;
        string expected = $"{ImageSize}x{ImageSize}x{Config.InputChannels} images ({per} values each)";
        if (count < 1)
            throw new ShapeException("xception", $"the image count must be at least 1, got {count}; expected {expected}");
        if (input.Length != (long)count * per)
            throw new ShapeException("xception", $"input of {input.Length} values does not hold {count} {expected}: {(long)count * per} values expected");
        if (batch < 1) throw new XceptionException($"the batch size must be at least 1, got {batch}");
        for (int i = 0; i < input.Length; i++)
            if (!float.IsFinite(input[i]))
                throw new XceptionException($"input value {i} (image {i / per}) is {input[i]}: the model takes finite values (Keras' 'tf' preprocessing gives -1..1)");
    }

    /// <summary>
    /// Classifies one image file (JPEG, PNG, ...): decoded to RGB, resized to the input size, preprocessed as
    /// Keras' 'tf' mode (x / 127.5 - 1). Bilinear resizing by default; Keras' load_img uses nearest.
    /// </summary>
    public IReadOnlyList<Prediction> Classify(string imagePath, int top = 5, ResizeMode resize = ResizeMode.Bilinear) =>
        Classify([imagePath], top, resize)[0];

    /// <summary>Classifies many image files, <paramref name="batch"/> at a time; results in the same order.</summary>
    public IReadOnlyList<IReadOnlyList<Prediction>> Classify(IReadOnlyList<string> imagePaths, int top = 5,
        ResizeMode resize = ResizeMode.Bilinear, int batch = 16)
    {
        if (Config.InputChannels != 3) throw new XceptionException($"images are RGB; this model takes {Config.InputChannels} channels");
        int per = ImageSize * ImageSize * 3;
        var results = new List<IReadOnlyList<Prediction>>(imagePaths.Count);
        for (int start = 0; start < imagePaths.Count; start += batch)
        {
            int n = Math.Min(batch, imagePaths.Count - start);
            var input = new float[n * per];
            for (int i = 0; i < n; i++) Preprocess.LoadKerasTf(imagePaths[start + i], ImageSize, input, i, resize);
            var probs = Probabilities(input, n, batch);
            for (int i = 0; i < n; i++) results.Add(Top(probs.AsSpan(i * Config.Classes, Config.Classes), top));
        }
        return results;
    }

    /// <summary>The <paramref name="top"/> classes of one row of probabilities, most probable first.</summary>
    public IReadOnlyList<Prediction> Top(ReadOnlySpan<float> probabilities, int top)
    {
        var row = probabilities.ToArray();
        return Enumerable.Range(0, row.Length).OrderByDescending(i => row[i]).ThenBy(i => i).Take(Math.Max(top, 1))
            .Select(i => new Prediction(i, Labels is { } l && i < l.Count ? l[i] : $"class {i}", row[i])).ToList();
    }

    /// <summary>Waits for the run in progress, then frees the model (and the device it opened).</summary>
    public void Dispose() => calls.Close(() =>
    {
        Model.Dispose();
        if (ownsDevice) device.Dispose();
    });
}
