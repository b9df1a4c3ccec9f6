using PureHDF;
using Xception.Gpu.Graph;
using Xception.Gpu.Models;

namespace Xception.Gpu.IO;

/// <summary>
/// Loads and saves model weights in either format, told apart by content, not name: Keras HDF5 (.h5) and
/// the project's checkpoint (safetensors with the model configuration in its metadata).
/// </summary>
public static class ModelWeights
{
    const string Format = "xception.gpu/1";
    static readonly byte[] Hdf5Magic = [0x89, (byte)'H', (byte)'D', (byte)'F', 0x0d, 0x0a, 0x1a, 0x0a];

    public static bool IsHdf5(string path)
    {
        if (!File.Exists(path)) throw new WeightsException($"weights file '{path}' does not exist");
        using var f = File.OpenRead(path);
        var head = new byte[8];
        return f.Read(head, 0, 8) == 8 && head.AsSpan().SequenceEqual(Hdf5Magic);
    }

    /// <summary>
    /// The configuration stored with the weights: a checkpoint's own, or for a Keras file the classes (from
    /// 'predictions') and whether it has the classifier; everything else from <paramref name="fallback"/>.
    /// </summary>
    public static XceptionConfig ConfigOf(string path, XceptionConfig fallback)
    {
        if (!IsHdf5(path))
        {
            var (_, meta) = SafeTensors.Read(path);
            if (!meta.TryGetValue("config", out var json) || meta.GetValueOrDefault("format") != Format)
                throw new WeightsException($"'{path}' is a safetensors file but not an Xception.Gpu checkpoint (no '{Format}' configuration in its metadata)");
            return XceptionConfig.FromJson(json);
        }
        try
        {
            using var file = H5File.OpenRead(path);
            if (!file.LinkExists("predictions"))
                return fallback with { IncludeTop = false, Pooling = fallback.IncludeTop ? Pooling.None : fallback.Pooling };
            var names = file.Group("predictions").Attribute("weight_names").Read<string[]>();
            var kernel = names.FirstOrDefault(n => n.EndsWith("kernel:0"));
            var dims = kernel is null ? [] : file.Group("predictions").Dataset(kernel).Space.Dimensions;
            return dims.Length == 2 ? fallback with { IncludeTop = true, Classes = (int)dims[1] } : fallback;
        }
        catch (Exception e) when (e is not XceptionException)
        {
            throw new WeightsException($"'{path}' could not be read as Keras weights: {e.Message}", e);
        }
    }

    public static void Load(Model model, string path)
    {
        if (IsHdf5(path)) KerasH5.Load(model, path);
        else LoadCheckpoint(model, path);
    }

    /// <summary>Writes Keras HDF5 when the path ends in .h5 or .hdf5, else a checkpoint.</summary>
    public static void Save(Model model, XceptionConfig config, string path, IReadOnlyDictionary<string, string>? metadata = null,
        IEnumerable<NamedTensor>? extra = null)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is ".h5" or ".hdf5") { KerasH5.Save(model, path); return; }
        model.SyncToHost();
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>())
        {
            ["format"] = Format,
            ["config"] = config.ToJson(),
        };
        var tensors = model.Layers.SelectMany(l => l.Parameters.Select(p => new NamedTensor($"{l.Name}/{p.Name}", p.KerasShape, p.Host)));
        SafeTensors.Write(path, tensors.Concat(extra ?? []), meta);
    }

    static void LoadCheckpoint(Model model, string path)
    {
        var (tensors, meta) = SafeTensors.Read(path);
        if (meta.GetValueOrDefault("format") != Format)
            throw new WeightsException($"'{path}' is a safetensors file but not an Xception.Gpu checkpoint (metadata format '{meta.GetValueOrDefault("format")}', expected '{Format}')");
        var byName = tensors.ToDictionary(t => t.Name);
        var values = new List<(Parameter, float[])>();
        foreach (var l in model.Layers)
            foreach (var p in l.Parameters)
            {
                string name = $"{l.Name}/{p.Name}";
                if (!byName.TryGetValue(name, out var t))
                    throw new WeightsException($"checkpoint '{path}' has no tensor '{name}'; was it saved from another model configuration?");
                if (!t.Shape.SequenceEqual(p.KerasShape))
                    throw new WeightsException($"{name}: expected shape ({string.Join(", ", p.KerasShape)}), found ({string.Join(", ", t.Shape)}) in '{path}'");
                values.Add((p, t.Data));
            }
        foreach (var (p, v) in values) p.Set(v);
    }
}
