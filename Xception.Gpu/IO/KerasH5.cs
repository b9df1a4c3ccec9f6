using System.Text.RegularExpressions;
using PureHDF;
using PureHDF.VOL.Native;
using Xception.Gpu.Graph;

namespace Xception.Gpu.IO;

/// <summary>A weight file that does not fit the model, or is not a weight file at all. One line, naming the layer.</summary>
public sealed class WeightsException(string message, Exception? inner = null) : XceptionException(message, inner);

/// <summary>
/// Keras' legacy HDF5 weight format, as Keras 2's <c>save_weights</c> writes it (and the official
/// <c>xception_weights_tf_dim_ordering_tf_kernels.h5</c>): a root attribute <c>layer_names</c>; per layer a
/// group with attribute <c>weight_names</c>; datasets at <c>layer/layer/name:0</c> in Keras' shapes.
/// </summary>
public static partial class KerasH5
{
    /// <summary>Keras' automatic names for the shortcut convolutions and batch norms, which differ between files.</summary>
    [GeneratedRegex(@"^(conv2d|batch_normalization)(_\d+)?$")]
    private static partial Regex AutoName();

    static string Kind(string name) => name.StartsWith("conv2d") ? "conv2d" : "batch_normalization";

    /// <summary>Reads every weight of <paramref name="model"/> from a Keras HDF5 file, checking every name and shape.</summary>
    public static void Load(Model model, string path)
    {
        if (!File.Exists(path)) throw new WeightsException($"weights file '{path}' does not exist");
        NativeFile file;
        try
        {
            file = H5File.OpenRead(path);
        }
        catch (Exception e)
        {
            throw new WeightsException($"'{path}' is not a readable HDF5 file ({e.Message.TrimEnd('.')}); expected Keras weights (.h5)", e);
        }
        using (file)
        {
            try
            {
                LoadFrom(model, file, path);
            }
            catch (WeightsException) { throw; }
            catch (Exception e) when (e is not XceptionException)
            {
                throw new WeightsException($"'{path}' could not be read (truncated or damaged?): {e.Message}", e);
            }
        }
    }

    static void LoadFrom(Model model, NativeFile file, string path)
    {
        if (!file.AttributeExists("layer_names"))
            throw new WeightsException($"'{path}' has no 'layer_names' attribute: not a Keras 2 weight file (expected the HDF5 file that Keras' save_weights writes)");
        var fileLayers = Strings(file.Attribute("layer_names"))
            .Select(n => (Name: n, Weights: Strings(file.Group(n).Attribute("weight_names"))))
            .Where(l => l.Weights.Length > 0)
            .ToList();
        var modelLayers = model.Layers.Where(l => l.Parameters.Count > 0).ToList();

        // The shortcut layers carry automatic names that depend on what else the Keras session built:
        // pair them by kind and order.
        var byName = fileLayers.Where(l => !AutoName().IsMatch(l.Name)).ToDictionary(l => l.Name);
        var pairs = new Dictionary<Layer, (string Name, string[] Weights)>();
        foreach (var kind in new[] { "conv2d", "batch_normalization" })
        {
            var inFile = fileLayers.Where(l => AutoName().IsMatch(l.Name) && Kind(l.Name) == kind).ToList();
            var inModel = modelLayers.Where(l => AutoName().IsMatch(l.Name) && Kind(l.Name) == kind).ToList();
            if (inFile.Count != inModel.Count)
                throw new WeightsException($"'{path}' has {inFile.Count} automatically named {kind} layers ({string.Join(", ", inFile.Select(l => l.Name))}); the model has {inModel.Count} (the shortcuts)");
            for (int i = 0; i < inModel.Count; i++) pairs[inModel[i]] = inFile[i];
        }
        foreach (var layer in modelLayers.Where(l => !pairs.ContainsKey(l)))
        {
            if (!byName.TryGetValue(layer.Name, out var fl))
                throw new WeightsException(layer.Name == "predictions"
                    ? $"'{path}' has no layer 'predictions': a weights file without the classifier (_notop) needs a model built without it (--no-top)"
                    : $"'{path}' has no layer '{layer.Name}' ({layer.KerasType}); is it a weight file of another model?");
            pairs[layer] = fl;
        }
        var unused = fileLayers.Select(l => l.Name).Except(pairs.Values.Select(p => p.Name)).Where(n => n != "predictions").ToList();
        if (unused.Count > 0)
            throw new WeightsException($"'{path}' has weights for layers the model does not have: {string.Join(", ", unused.Take(5))}{(unused.Count > 5 ? ", ..." : "")}");

        var values = new List<(Parameter P, float[] V)>();
        foreach (var layer in modelLayers)
        {
            var (fileName, weights) = pairs[layer];
            if (weights.Length != layer.Parameters.Count)
                throw new WeightsException($"{layer.Name}: '{path}' layer '{fileName}' has {weights.Length} weights ({string.Join(", ", weights)}), expected {layer.Parameters.Count} ({string.Join(", ", layer.Parameters.Select(p => p.Name))})");
            for (int i = 0; i < weights.Length; i++)
            {
                var p = layer.Parameters[i];
                string short_ = weights[i][(weights[i].LastIndexOf('/') + 1)..].Split(':')[0];
                if (short_ != p.Name)
                    throw new WeightsException($"{layer.Name}: weight {i} in '{path}' is '{weights[i]}', expected '{p.Name}'");
                var ds = file.Dataset($"{fileName}/{weights[i]}");
                var dims = ds.Space.Dimensions.Select(d => (int)d).ToArray();
                if (!dims.SequenceEqual(p.KerasShape))
                    throw new WeightsException($"{layer.Name}/{p.Name}: expected shape ({string.Join(", ", p.KerasShape)}), found ({string.Join(", ", dims)}) in '{path}'");
                if (ds.Type.Class != H5DataTypeClass.FloatingPoint || ds.Type.Size != 4)
                    throw new WeightsException($"{layer.Name}/{p.Name}: expected float32 values, found {ds.Type.Class} of {ds.Type.Size} bytes in '{path}'");
                values.Add((p, ds.Read<float[]>()));
            }
        }
        // Only now that every weight was found and fits: nothing is half-loaded after an error.
        foreach (var (p, v) in values) p.Set(v);
    }

    /// <summary>
    /// A string-array attribute. Keras 2 writes an empty weight_names as an empty float64 array
    /// (np.asarray([])), which is no string array to decode: an empty attribute of any type is no names.
    /// </summary>
    static string[] Strings(PureHDF.IH5Attribute a) =>
        a.Space.Dimensions.Length > 0 && a.Space.Dimensions.Aggregate(1UL, (x, y) => x * y) == 0 ? [] : a.Read<string[]>();

    /// <summary>Writes the model's weights in the same layout (every layer in layer_names, as Keras does).</summary>
    public static void Save(Model model, string path)
    {
        model.SyncToHost();
        var file = new H5File();
        file.Attributes["layer_names"] = model.Layers.Select(l => l.Name).ToArray();
        file.Attributes["backend"] = "tensorflow";
        file.Attributes["keras_version"] = "2.2.4";
        foreach (var layer in model.Layers)
        {
            var group = new H5Group();
            group.Attributes["weight_names"] = layer.Parameters.Select(p => $"{layer.Name}/{p.Name}:0").ToArray();
            if (layer.Parameters.Count > 0)
            {
                var inner = new H5Group();
                foreach (var p in layer.Parameters)
                    inner[$"{p.Name}:0"] = new H5Dataset((float[])p.Host.Clone(), fileDims: p.KerasShape.Select(d => (ulong)d).ToArray());
                group[layer.Name] = inner;
            }
            file[layer.Name] = group;
        }
        AtomicFile.Write(path, s => file.Write(s));
    }
}
