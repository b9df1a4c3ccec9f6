using Xception.Gpu.Graph;
using Xception.Gpu.Imaging;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
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
/// combined into the next run (see <see cref="CallCombiner{TRequest, TResult}"/>), and every image gets bit for bit the result it gets
/// alone, whatever else runs with it.
/// </summary>
public sealed class XceptionModel : IDisposable
{
    readonly Device device;
    readonly bool ownsDevice;
    /// <summary>The device lock and the queue of concurrent calls (<see cref="CallCombiner{TRequest, TResult}"/>).</summary>
    readonly CallCombiner<InferenceRequest, float[]> calls;
    readonly GradCam gradCam;

    XceptionModel(Model model, XceptionConfig config, Device device, bool ownsDevice)
    {
        Model = model;
        Config = config;
        this.device = device;
        this.ownsDevice = ownsDevice;
        Labels = config.IncludeTop && config.Classes == 1000 ? ImageNetLabels.All : null;
        calls = new(this, group => InferenceBatches.Run(Model, device, Config, group));
        gradCam = new GradCam(model, device, config);
    }

    public Model Model { get; }
    public XceptionConfig Config { get; }
    public Device Device => device;

    /// <summary>
    /// How the model's matrix products multiply (<see cref="Runtime.Precision"/>; default fp32, Keras' results): the
    /// setting of the device the model opened. Set it before the first call.
    /// </summary>
    public Precision Precision
    {
        get => device.Precision;
        set => device.Precision = value;
    }
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
        if (!Config.IncludeTop) throw new InferenceInputException("this model has no classifier (include_top is off): use Logits for its features");
        return Submit(input, count, batch, softmax: true);
    }

    float[] Submit(ReadOnlySpan<float> input, int count, int batch, bool softmax)
    {
        CheckInput(input, count, batch);
        return calls.Run(new InferenceRequest(input.ToArray(), count, batch, softmax));
    }

    /// <summary>
    /// Refuses input that is not <paramref name="count"/> whole images of finite values (a <see cref="ShapeException"/>
    /// or an <see cref="InferenceInputException"/>); what every call taking preprocessed input checks first, public so
    /// that a caller queueing input for later (a server) can refuse it at once with the same message.
    /// </summary>
    public void CheckInput(ReadOnlySpan<float> input, int count)
    {
        int per = ImageSize * ImageSize * Config.InputChannels;
        string expected = $"{ImageSize}x{ImageSize}x{Config.InputChannels} images ({per} values each)";
        if (count < 1)
            throw new ShapeException("xception", $"the image count must be at least 1, got {count}; expected {expected}");
        if (input.Length != (long)count * per)
            throw new ShapeException("xception", $"input of {input.Length} values does not hold {count} {expected}: {(long)count * per} values expected");
        for (int i = 0; i < input.Length; i++)
            if (!float.IsFinite(input[i]))
                throw new InferenceInputException($"input value {i} (image {i / per}) is {input[i]}: the model takes finite values (Keras' 'tf' preprocessing gives -1..1)");
    }

    void CheckInput(ReadOnlySpan<float> input, int count, int batch)
    {
        CheckInput(input, count);
        if (batch < 1) throw new InferenceInputException($"the batch size must be at least 1, got {batch}");
    }

    /// <summary>
    /// Refuses what <see cref="Explain(ReadOnlySpan{float}, int, int?, string?, int)"/> cannot explain (an
    /// <see cref="InferenceInputException"/>): a model without a classifier, a class it does not have, a layer without
    /// a spatial output. Public for the same reason as <see cref="CheckInput(ReadOnlySpan{float}, int)"/>.
    /// </summary>
    public void CheckExplain(int? classIndex, string? layer)
    {
        if (!Config.IncludeTop) throw new InferenceInputException("this model has no classifier (include_top is off): Grad-CAM explains a class's logit");
        gradCam.Layer(layer);
        int classes = Config.Classes;
        if (classIndex is { } k && (k < 0 || k >= classes))
            throw new InferenceInputException($"class {k} is out of range: this model has {classes} classes (0..{classes - 1})");
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
        if (Config.InputChannels != 3) throw new InferenceInputException($"images are RGB; this model takes {Config.InputChannels} channels");
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

    /// <summary>
    /// Device runs so far and the requests they served: Requests / Runs is how many concurrent calls were
    /// combined on average.
    /// </summary>
    public (long Runs, long Requests) Stats => calls.Stats;

    /// <summary>
    /// Loads weights for image embeddings (transfer learning): the model without its classifier, ending in
    /// the global <paramref name="pooling"/> of block14's activation, as Keras'
    /// <c>Xception(include_top=False, pooling=...)</c>. Works from a file with the classifier or without it
    /// (a Keras _notop file): the classifier's weights are not read. The rest of the configuration comes from
    /// the file as in <see cref="Load(string, string, int?)"/>.
    /// <code>
    /// using var model = XceptionModel.LoadFeatures("xception_weights_tf_dim_ordering_tf_kernels_notop.h5");
    /// float[] embeddings = model.Features(["a.jpg", "b.jpg"]);   // 2 x 2048
    /// </code>
    /// </summary>
    public static XceptionModel LoadFeatures(string weights, string device = "auto", int? imageSize = null, GlobalPooling pooling = GlobalPooling.Avg)
    {
        // GlobalPooling.None would give the N x H x W x C maps, not one vector per image.
        if (pooling is not (GlobalPooling.Avg or GlobalPooling.Max))
            throw new InferenceInputException($"features need average or max pooling, got {pooling}");
        return Load(weights, device, imageSize, c => c with { IncludeTop = false, Pooling = pooling });
    }

    /// <summary>True when the model ends in global pooling without a classifier (see <see cref="LoadFeatures"/>).</summary>
    public bool IsFeatureModel => !Config.IncludeTop && Config.Pooling != GlobalPooling.None;

    /// <summary>Length of one image's feature vector: block14's channels (2048 at full width).</summary>
    public int FeatureSize => Config.Channels(2048);

    /// <summary>
    /// The embeddings of preprocessed NHWC float32 input (as for <see cref="Logits"/>): [count, FeatureSize],
    /// row by row. Thread-safe and batched as <see cref="Logits"/>: concurrent calls are combined into one
    /// run and each image gets bit for bit what it gets alone.
    /// </summary>
    public float[] Features(ReadOnlySpan<float> input, int count, int batch = 16)
    {
        RequireFeatureModel();
        return Submit(input, count, batch, softmax: false);
    }

    /// <summary>The embedding of one image file, read and preprocessed as <see cref="Classify(string, int, ResizeMode)"/> does.</summary>
    public float[] Features(string imagePath, ResizeMode resize = ResizeMode.Bilinear) => Features([imagePath], resize);

    /// <summary>
    /// The embeddings of image files, <paramref name="batch"/> at a time: [count, FeatureSize] in the order
    /// given. A file that cannot be read throws an ImageException naming it (nothing is returned for the
    /// others; call per image to keep them).
    /// </summary>
    public float[] Features(IReadOnlyList<string> imagePaths, ResizeMode resize = ResizeMode.Bilinear, int batch = 16)
    {
        RequireFeatureModel();
        if (Config.InputChannels != 3) throw new InferenceInputException($"images are RGB; this model takes {Config.InputChannels} channels");
        if (imagePaths.Count == 0) throw new InferenceInputException("no images given");
        int per = ImageSize * ImageSize * 3;
        var result = new float[(long)imagePaths.Count * FeatureSize];
        for (int start = 0; start < imagePaths.Count; start += batch)
        {
            int n = Math.Min(batch, imagePaths.Count - start);
            var input = new float[n * per];
            for (int i = 0; i < n; i++) Preprocess.LoadKerasTf(imagePaths[start + i], ImageSize, input, i, resize);
            Features(input, n, batch).CopyTo(result, (long)start * FeatureSize);
        }
        return result;
    }

    void RequireFeatureModel()
    {
        if (!IsFeatureModel)
            throw new InferenceInputException(Config.IncludeTop
                ? "this model has its classifier: load the weights with LoadFeatures for embeddings"
                : "this model has no pooling after block14 (pooling none): load the weights with LoadFeatures for one vector per image");
    }

    /// <summary>
    /// The layer Grad-CAM explains by default: the last with a spatial output, the last ReLU before the pooling
    /// (block14_sepconv2_act in Xception, as in Keras' Grad-CAM example).
    /// </summary>
    public string DefaultExplainLayer => gradCam.Layers[^1];

    /// <summary>
    /// Grad-CAM (Selvaraju et al.), as Keras' "Grad-CAM class activation visualization" example computes it for
    /// Xception: the gradient of the class's logit (before softmax) with respect to <paramref name="layer"/>'s
    /// output, averaged over height and width, weights that layer's channels; the heatmap is the ReLU of their
    /// weighted sum divided by its maximum, per image. The network runs as in inference (batch norm with its
    /// moving statistics, no dropout), so the class is the one <see cref="Logits"/> ranks first.
    /// <paramref name="classIndex"/> null explains each image's top class; <paramref name="layer"/> null, the
    /// <see cref="DefaultExplainLayer"/>. Input as for <see cref="Logits"/>;
    /// runs <paramref name="batch"/> images at a time under the device lock that serves the other calls, so it
    /// is safe alongside them (each batch keeps every activation for the backward pass, as training does).
    /// </summary>
    public IReadOnlyList<Explanation> Explain(ReadOnlySpan<float> input, int count, int? classIndex = null,
        string? layer = null, int batch = 8)
    {
        CheckExplain(classIndex, layer);
        CheckInput(input, count, batch);
        var target = gradCam.Layer(layer);
        var data = input.ToArray();
        return calls.Exclusive(() =>
        {
            var results = new List<Explanation>(count);
            int per = ImageSize * ImageSize * Config.InputChannels;
            for (int start = 0; start < count;)
            {
                // Batch sizes as InferenceBatches picks them, so that few executors are kept.
                int left = count - start;
                int n = left >= batch ? batch : 1 << System.Numerics.BitOperations.Log2((uint)left);
                results.AddRange(gradCam.Run(data.AsSpan(start * per, n * per), n, classIndex, target, Labels));
                start += n;
            }
            return (IReadOnlyList<Explanation>)results;
        });
    }

    /// <summary>
    /// Explains image files (decoded, resized to the input size, bilinear by default, and preprocessed as
    /// <see cref="Classify(string, int, ResizeMode)"/> does); results in the same order. Draw one over its image
    /// with <see cref="Explanation.Overlay"/>.
    /// </summary>
    public IReadOnlyList<Explanation> Explain(IReadOnlyList<string> imagePaths, int? classIndex = null,
        string? layer = null, ResizeMode resize = ResizeMode.Bilinear, int batch = 8)
    {
        if (Config.InputChannels != 3) throw new InferenceInputException($"images are RGB; this model takes {Config.InputChannels} channels");
        gradCam.Layer(layer); // a wrong layer name fails before any image is decoded
        int per = ImageSize * ImageSize * 3;
        var input = new float[(long)imagePaths.Count * per];
        for (int i = 0; i < imagePaths.Count; i++) Preprocess.LoadKerasTf(imagePaths[i], ImageSize, input, i, resize);
        return Explain(input, imagePaths.Count, classIndex, layer, batch);
    }

    /// <summary>
    /// The layers Grad-CAM can explain: those with a spatial output (height x width x channels) that a gradient
    /// reaches, i.e. every layer from the first convolution to the last ReLU, in model order.
    /// </summary>
    public IReadOnlyList<string> ExplainableLayers => gradCam.Layers;

    /// <summary>Waits for the run in progress, then frees the model (and the device it opened).</summary>
    public void Dispose() => calls.Close(() =>
    {
        Model.Dispose();
        if (ownsDevice) device.Dispose();
    });
}
