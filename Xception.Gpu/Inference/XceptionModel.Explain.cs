using Xception.Gpu.Graph;
using Xception.Gpu.Graph.Layers;
using Xception.Gpu.Imaging;

namespace Xception.Gpu.Inference;

/// <summary>
/// A Grad-CAM explanation of one image: which class it explains and where in the image the evidence for that
/// class lies, as a <see cref="Height"/> x <see cref="Width"/> map (the explained layer's spatial size) in
/// [0, 1], row-major, its maximum 1 (or all zeros when nothing speaks for the class).
/// </summary>
public sealed record Explanation(int Class, string Label, float Logit, string Layer, int Height, int Width, float[] Heatmap)
{
    /// <summary>The heatmap's value at row <paramref name="y"/>, column <paramref name="x"/>.</summary>
    public float this[int y, int x] => Heatmap[y * Width + x];

    /// <summary>
    /// The heatmap drawn over <paramref name="image"/> (any size; normally the image that was explained) as
    /// Keras' Grad-CAM example draws it: see <see cref="HeatmapOverlay"/>.
    /// </summary>
    public RgbImage Overlay(RgbImage image) => HeatmapOverlay.Render(Heatmap, Height, Width, image);
}

public sealed partial class XceptionModel
{
    /// <summary>
    /// The layer Grad-CAM explains by default: the last with a spatial output, the last ReLU before the pooling
    /// (block14_sepconv2_act in Xception, as in Keras' Grad-CAM example).
    /// </summary>
    public string DefaultExplainLayer => ExplainableLayers[^1];

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
        if (!Config.IncludeTop) throw new XceptionException("this model has no classifier (include_top is off): Grad-CAM explains a class's logit");
        CheckInput(input, count, batch);
        var target = ExplainLayer(layer);
        int classes = Config.Classes;
        if (classIndex is { } k && (k < 0 || k >= classes))
            throw new XceptionException($"class {k} is out of range: this model has {classes} classes (0..{classes - 1})");
        var data = input.ToArray();
        return calls.Exclusive(() =>
        {
            var results = new List<Explanation>(count);
            int per = ImageSize * ImageSize * Config.InputChannels;
            for (int start = 0; start < count;)
            {
                // Batch sizes as Execute picks them, so that few executors are kept.
                int left = count - start;
                int n = left >= batch ? batch : 1 << System.Numerics.BitOperations.Log2((uint)left);
                results.AddRange(ExplainBatch(data.AsSpan(start * per, n * per), n, classIndex, target));
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
        if (Config.InputChannels != 3) throw new XceptionException($"images are RGB; this model takes {Config.InputChannels} channels");
        ExplainLayer(layer); // a wrong layer name fails before any image is decoded
        int per = ImageSize * ImageSize * 3;
        var input = new float[(long)imagePaths.Count * per];
        for (int i = 0; i < imagePaths.Count; i++) Preprocess.LoadKerasTf(imagePaths[i], ImageSize, input, i, resize);
        return Explain(input, imagePaths.Count, classIndex, layer, batch);
    }

    /// <summary>
    /// The layers Grad-CAM can explain: those with a spatial output (height x width x channels) that a gradient
    /// reaches, i.e. every layer from the first convolution to the last ReLU, in model order.
    /// </summary>
    public IReadOnlyList<string> ExplainableLayers =>
        Model.Layers.Where(l => l is not InputLayer && l.OutputShape.Length == 3).Select(l => l.Name).ToList();

    Layer ExplainLayer(string? name)
    {
        name ??= DefaultExplainLayer;
        var found = Model.Layers.FirstOrDefault(l => l.Name == name);
        if (found is not null && found is not InputLayer && found.OutputShape.Length == 3) return found;
        var valid = ExplainableLayers;
        string some = string.Join(", ", valid.TakeLast(4).Prepend(valid[0]));
        string why = found is null ? "this model has no layer" : "Grad-CAM needs a layer with a height x width x channels output, not";
        throw new XceptionException($"{why} '{name}'; explainable layers are the {valid.Count} from {valid[0]} to {valid[^1]}, e.g. {some}");
    }

    /// <summary>
    /// One batch: a forward pass of a training executor with the layers in inference mode (it keeps the
    /// activations), the chosen logits' gradient (one-hot: 1 at each image's class) back to the layer, then
    /// the heatmaps on the host (a few thousand values per image).
    /// </summary>
    Explanation[] ExplainBatch(ReadOnlySpan<float> input, int n, int? classIndex, Layer layer)
    {
        var exec = Model.Executor(n, training: true);
        int classes = Config.Classes;
        bool was = exec.InferenceLayers;
        exec.InferenceLayers = true;
        try
        {
            using var x = Tensor.From(device, input.ToArray(), n, ImageSize, ImageSize, Config.InputChannels);
            var logits = exec.Forward(x).ToArray();
            var chosen = new int[n];
            var oneHot = new float[n * classes];
            for (int i = 0; i < n; i++)
            {
                chosen[i] = classIndex ?? ArgMax(logits.AsSpan(i * classes, classes));
                oneHot[i * classes + chosen[i]] = 1;
            }
            using var dLogits = Tensor.From(device, oneHot, n, classes);
            exec.Backward(dLogits, downTo: layer);
            var activation = exec.Output(layer).ToArray();
            var gradient = exec.OutputGradient(layer)?.ToArray() ?? new float[activation.Length];
            int h = layer.OutputShape[0], w = layer.OutputShape[1], c = layer.OutputShape[2];
            var results = new Explanation[n];
            for (int i = 0; i < n; i++)
            {
                var heat = GradCam(activation.AsSpan(i * h * w * c, h * w * c), gradient.AsSpan(i * h * w * c, h * w * c), h * w, c);
                int k = chosen[i];
                results[i] = new Explanation(k, Labels is { } l && k < l.Count ? l[k] : $"class {k}", logits[i * classes + k], layer.Name, h, w, heat);
            }
            return results;
        }
        finally
        {
            exec.InferenceLayers = was;
        }
    }

    /// <summary>The first index of the largest value (as argmax does).</summary>
    static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int i = 1; i < row.Length; i++) if (row[i] > row[best]) best = i;
        return best;
    }

    /// <summary>
    /// One image's heatmap from its activation and gradient (pixels x channels, channels last): channel weights
    /// are the gradient's spatial mean, the map the ReLU of the weighted channel sum over its maximum. Sums in
    /// float64, so the result does not depend on the order of thousands of float32 additions.
    /// </summary>
    static float[] GradCam(ReadOnlySpan<float> activation, ReadOnlySpan<float> gradient, int pixels, int channels)
    {
        var weight = new double[channels];
        for (int p = 0; p < pixels; p++)
            for (int k = 0; k < channels; k++) weight[k] += gradient[p * channels + k];
        for (int k = 0; k < channels; k++) weight[k] /= pixels;
        var map = new double[pixels];
        double max = 0;
        for (int p = 0; p < pixels; p++)
        {
            double s = 0;
            for (int k = 0; k < channels; k++) s += weight[k] * activation[p * channels + k];
            map[p] = Math.Max(s, 0);
            max = Math.Max(max, map[p]);
        }
        var heat = new float[pixels];
        if (max > 0) for (int p = 0; p < pixels; p++) heat[p] = (float)(map[p] / max);
        return heat;
    }
}
