using Xception.Gpu.Graph;
using Xception.Gpu.Graph.Layers;
using Xception.Gpu.Architecture;

namespace Xception.Gpu.Inference;

/// <summary>
/// Grad-CAM (Selvaraju et al.) on a model, as Keras' "Grad-CAM class activation visualization" example computes it
/// for Xception: the gradient of the class's logit (before softmax) with respect to a layer's output, averaged over
/// height and width, weights that layer's channels; the heatmap is the ReLU of their weighted sum divided by its
/// maximum, per image. Not thread-safe: <see cref="XceptionModel.Explain(ReadOnlySpan{float}, int, int?, string?, int)"/>
/// runs it under the model's device lock.
/// </summary>
sealed class GradCam(Model model, Device device, XceptionConfig config)
{
    /// <summary>
    /// The layers Grad-CAM can explain: those with a spatial output (height x width x channels) that a gradient
    /// reaches, i.e. every layer from the first convolution to the last ReLU, in model order.
    /// </summary>
    public IReadOnlyList<string> Layers =>
        model.Layers.Where(l => l is not InputLayer && l.OutputShape.Length == 3).Select(l => l.Name).ToList();

    /// <summary>The layer named <paramref name="name"/> (null: the last explainable one), or an <see cref="InferenceInputException"/> naming a few valid ones.</summary>
    public Layer Layer(string? name)
    {
        name ??= Layers[^1];
        var found = model.Layers.FirstOrDefault(l => l.Name == name);
        if (found is not null && found is not InputLayer && found.OutputShape.Length == 3) return found;
        var valid = Layers;
        string some = string.Join(", ", valid.TakeLast(4).Prepend(valid[0]));
        string why = found is null ? "this model has no layer" : "Grad-CAM needs a layer with a height x width x channels output, not";
        throw new InferenceInputException($"{why} '{name}'; explainable layers are the {valid.Count} from {valid[0]} to {valid[^1]}, e.g. {some}");
    }

    /// <summary>
    /// One batch: a forward pass of a training executor with the layers in inference mode (it keeps the
    /// activations), the chosen logits' gradient (one-hot: 1 at each image's class) back to the layer, then
    /// the heatmaps on the host (a few thousand values per image).
    /// </summary>
    public Explanation[] Run(ReadOnlySpan<float> input, int n, int? classIndex, Layer layer, IReadOnlyList<string>? labels)
    {
        var exec = model.Executor(n, training: true);
        int classes = config.Classes;
        bool was = exec.InferenceLayers;
        exec.InferenceLayers = true;
        try
        {
            using var x = Tensor.From(device, input.ToArray(), n, config.ImageSize, config.ImageSize, config.InputChannels);
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
                var heat = Heatmap(activation.AsSpan(i * h * w * c, h * w * c), gradient.AsSpan(i * h * w * c, h * w * c), h * w, c);
                int k = chosen[i];
                results[i] = new Explanation(k, labels is { } l && k < l.Count ? l[k] : $"class {k}", logits[i * classes + k], layer.Name, h, w, heat);
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
    static float[] Heatmap(ReadOnlySpan<float> activation, ReadOnlySpan<float> gradient, int pixels, int channels)
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
