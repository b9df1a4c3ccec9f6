using System.Text.RegularExpressions;
using PureHDF;
using PureHDF.VOL.Native;
using Xception.Gpu.Graph;
using Xception.Gpu.Architecture;

namespace Xception.Gpu.IO;

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

    /// <summary>Root attribute holding the <see cref="XceptionConfig"/> JSON in the .h5 files this project writes.</summary>
    public const string ConfigAttribute = "xception_gpu_config";

    /// <summary>Reads every weight of <paramref name="model"/> from a Keras HDF5 file, checking every name and shape.</summary>
    public static void Load(Model model, string path) => Load(model, path, new HashSet<Layer>());

    /// <summary>Loads every layer but those in <paramref name="skip"/> (which the file need not have, or may have in another shape).</summary>
    internal static void Load(Model model, string path, IReadOnlySet<Layer> skip) =>
        WithFile(path, (file, length) => { LoadFrom(model, file, path, length, skip); return 0; });

    /// <summary>
    /// The configuration of a Keras file: the one this project stored in it, else the classes (from
    /// 'predictions') and whether it has the classifier, everything else from <paramref name="fallback"/>.
    /// </summary>
    public static XceptionConfig ConfigOf(string path, XceptionConfig fallback) => WithFile(path, (file, length) =>
    {
        if (file.AttributeExists(ConfigAttribute))
        {
            var config = ModelWeights.ParseConfig(path, String(file.Attribute(ConfigAttribute), path, ConfigAttribute, length), $"attribute '{ConfigAttribute}'");
            ModelWeights.CheckConfig(path, config, name => ShapeOf(file, name));
            return config;
        }
        if (!file.LinkExists("predictions"))
            return fallback with { IncludeTop = false, Pooling = fallback.IncludeTop ? GlobalPooling.None : fallback.Pooling };
        var names = Strings(file.Group("predictions").Attribute("weight_names"), path, "predictions/weight_names", length);
        var kernel = names.FirstOrDefault(n => n.EndsWith("kernel:0"));
        var dims = kernel is null ? [] : file.Group("predictions").Dataset(kernel).Space.Dimensions;
        if (dims.Length != 2) return fallback;
        if (dims[1] is 0 or > int.MaxValue)
            throw new WeightsException($"'{path}': predictions/kernel has shape ({string.Join(", ", dims)}); expected (inputs, classes) with 1 to {int.MaxValue} classes");
        return fallback with { IncludeTop = true, Classes = (int)dims[1] };
    });

    /// <summary>The dimensions of the dataset of weight "layer/name" as this project and Keras lay it out, or null.</summary>
    static ulong[]? ShapeOf(NativeFile file, string name)
    {
        var (layer, weight) = (name[..name.IndexOf('/')], name[(name.IndexOf('/') + 1)..]);
        string at = $"{layer}/{layer}/{weight}:0";
        return file.LinkExists(layer) && file.Group(layer).LinkExists(layer) && file.Group(layer).Group(layer).LinkExists($"{weight}:0")
            ? file.Dataset(at).Space.Dimensions : null;
    }

    /// <summary>
    /// Opens the file and runs <paramref name="read"/> on it. PureHDF reports damage with whatever exception the
    /// damaged structure led it to (index out of range, end of stream, overflow, not supported...): every one
    /// becomes a one-line WeightsException naming the file.
    /// </summary>
    static T WithFile<T>(string path, Func<NativeFile, long, T> read)
    {
        WeightsFiles.RequireFile(path);
        NativeFile file;
        long length;
        try
        {
            length = new FileInfo(path).Length;
            // PureHDF allocates global heap objects at their declared size before checking them: check first.
            Hdf5HeapCheck.Check(path);
            file = H5File.OpenRead(path);
        }
        catch (Exception e) when (e is not XceptionException)
        {
            throw new WeightsException($"'{path}' is not a readable HDF5 file ({OneLine(e.Message).TrimEnd('.')}); expected Keras weights (.h5)", e);
        }
        using (file)
        {
            try
            {
                return read(file, length);
            }
            catch (WeightsException e) when (e.Message.Any(char.IsControl))
            {
                // Layer and weight names come from the file and are quoted in messages: keep them on one line.
                throw new WeightsException(OneLine(e.Message), e);
            }
            catch (Exception e) when (e is not XceptionException)
            {
                throw new WeightsException($"'{path}' could not be read (truncated or damaged?): {e.GetType().Name}: {OneLine(e.Message)}", e);
            }
        }
    }

    static void WithFile(string path, Action<NativeFile, long> read) => WithFile(path, (f, l) => { read(f, l); return 0; });

    /// <summary>Messages of the HDF5 library can span lines; a WeightsException has one.</summary>
    static string OneLine(string s) => string.Concat(s.Select(c => char.IsControl(c) ? ' ' : c));

    static void LoadFrom(Model model, NativeFile file, string path, long length, IReadOnlySet<Layer> skip)
    {
        if (!file.AttributeExists("layer_names"))
            throw new WeightsException($"'{path}' has no 'layer_names' attribute: not a Keras 2 weight file (expected the HDF5 file that Keras' save_weights writes)");
        var fileLayers = Strings(file.Attribute("layer_names"), path, "layer_names", length)
            .Select(n => (Name: n, Weights: Strings(file.Group(n).Attribute("weight_names"), path, $"{n}/weight_names", length)))
            .Where(l => l.Weights.Length > 0)
            .ToList();
        var modelLayers = model.Layers.Where(l => l.Parameters.Count > 0 && !skip.Contains(l)).ToList();

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
                    ? $"'{path}' has no layer 'predictions': a weights file without the classifier (_notop) needs a model built without it (IncludeTop = false)"
                    : $"'{path}' has no layer '{layer.Name}' ({layer.KerasType}); is it a weight file of another model?");
            pairs[layer] = fl;
        }
        var unused = fileLayers.Select(l => l.Name).Except(pairs.Values.Select(p => p.Name)).Where(n => n != "predictions" && !skip.Any(l => l.Name == n)).ToList();
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
                // Compared as stored (64-bit): a dimension cast to int could wrap onto the expected one.
                var dims = ds.Space.Dimensions;
                if (!dims.SequenceEqual(p.KerasShape.Select(d => (ulong)d)))
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
    /// The element count is checked against the file before reading: every string takes at least a byte of
    /// the file, so a larger count is damage, and reading it would allocate what the damage says.
    /// </summary>
    static string[] Strings(PureHDF.IH5Attribute a, string path, string name, long fileLength)
    {
        ulong count = Count(a.Space.Dimensions);
        if (a.Space.Dimensions.Length > 0 && count == 0) return [];
        if (count > (ulong)fileLength)
            throw new WeightsException($"'{path}': attribute '{name}' claims {count} strings in a file of {fileLength} bytes (damaged?)");
        if (!IsString(a.Type))
            throw new WeightsException($"'{path}': attribute '{name}' holds {a.Type.Class} values, expected strings");
        return a.Read<string[]>();
    }

    /// <summary>A single string attribute (this project's stored configuration), bounded like <see cref="Strings"/>.</summary>
    static string String(PureHDF.IH5Attribute a, string path, string name, long fileLength)
    {
        if (!IsString(a.Type) || Count(a.Space.Dimensions) != 1)
            throw new WeightsException($"'{path}': attribute '{name}' is not a single string (found {a.Type.Class}, {Count(a.Space.Dimensions)} values)");
        if (a.Type.Size > fileLength)
            throw new WeightsException($"'{path}': attribute '{name}' claims {a.Type.Size} bytes in a file of {fileLength} (damaged?)");
        return a.Read<string>();
    }

    /// <summary>Fixed-length strings are HDF5's String class; variable-length ones (what h5py and PureHDF write) VariableLength.</summary>
    static bool IsString(PureHDF.IH5DataType t) => t.Class is H5DataTypeClass.String or H5DataTypeClass.VariableLength;

    /// <summary>The element count of a dataspace, saturating instead of wrapping (a damaged one can say anything).</summary>
    static ulong Count(ulong[] dims)
    {
        ulong n = 1;
        foreach (var d in dims) n = d != 0 && n > ulong.MaxValue / d ? ulong.MaxValue : n * d;
        return dims.Contains(0UL) ? 0 : n;
    }

    /// <summary>
    /// Writes the model's weights in the same layout (every layer in layer_names, as Keras does), with the
    /// model's configuration as a root attribute when given (Keras ignores it; <see cref="ConfigOf"/> reads it).
    /// The layers go in Keras' <c>model.layers</c> order (<see cref="KerasLayerOrder"/>), which Keras' load_weights
    /// pairs them by, so Keras loads the file into its own Xception.
    /// </summary>
    public static void Save(Model model, string path, XceptionConfig? config = null)
    {
        model.SyncToHost();
        var layers = KerasLayerOrder.Of(model);
        var file = new H5File();
        if (config is not null) file.Attributes[ConfigAttribute] = config.ToJson();
        file.Attributes["layer_names"] = layers.Select(l => l.Name).ToArray();
        file.Attributes["backend"] = "tensorflow";
        file.Attributes["keras_version"] = "2.2.4";
        foreach (var layer in layers)
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
