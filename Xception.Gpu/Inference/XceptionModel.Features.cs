using Xception.Gpu.Imaging;
using Xception.Gpu.Models;

namespace Xception.Gpu.Inference;

public sealed partial class XceptionModel
{
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
    public static XceptionModel LoadFeatures(string weights, string device = "auto", int? imageSize = null, Pooling pooling = Pooling.Avg)
    {
        // Pooling.None would give the N x H x W x C maps, not one vector per image.
        if (pooling is not (Pooling.Avg or Pooling.Max))
            throw new XceptionException($"features need average or max pooling, got {pooling}");
        return Load(weights, device, imageSize, c => c with { IncludeTop = false, Pooling = pooling });
    }

    /// <summary>True when the model ends in global pooling without a classifier (see <see cref="LoadFeatures"/>).</summary>
    public bool IsFeatureModel => !Config.IncludeTop && Config.Pooling != Pooling.None;

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
        if (Config.InputChannels != 3) throw new XceptionException($"images are RGB; this model takes {Config.InputChannels} channels");
        if (imagePaths.Count == 0) throw new XceptionException("no images given");
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
            throw new XceptionException(Config.IncludeTop
                ? "this model has its classifier: load the weights with LoadFeatures for embeddings"
                : "this model has no pooling after block14 (pooling none): load the weights with LoadFeatures for one vector per image");
    }
}
