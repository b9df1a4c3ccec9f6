using Xception.Gpu.Graph;
using Xception.Gpu.Architecture;

namespace Xception.Gpu.IO;

/// <summary>How <see cref="ModelWeights.Load(Model, string, WeightsLoadOptions)"/> loads.</summary>
public sealed record WeightsLoadOptions
{
    /// <summary>
    /// Transfer learning: load everything below the classifier and start the classifier fresh (Glorot-uniform
    /// kernel, zero bias) for the model's own class count, whatever classifier the file has, if any.
    /// </summary>
    public bool NewHead { get; init; }

    /// <summary>The seed of the fresh classifier's initial values.</summary>
    public int Seed { get; init; }
}

/// <summary>What a load did: the layers (with weights) read from the file, and those that started fresh.</summary>
public sealed record WeightsLoadResult(IReadOnlyList<string> Loaded, IReadOnlyList<string> Fresh);

/// <summary>
/// Loads and saves model weights in either format, told apart by content, not name: Keras HDF5 (.h5) and
/// the project's checkpoint (safetensors with the model configuration in its metadata).
/// </summary>
public static class ModelWeights
{
    const string Format = "xception.gpu/1";
    static readonly byte[] Hdf5Magic = [0x89, (byte)'H', (byte)'D', (byte)'F', 0x0d, 0x0a, 0x1a, 0x0a];

    enum Kind { Hdf5, Checkpoint }

    public static bool IsHdf5(string path)
    {
        var head = Head(path);
        return head.Length >= 8 && head.AsSpan(0, 8).SequenceEqual(Hdf5Magic);
    }

    /// <summary>The first 9 bytes (fewer for a shorter file): enough for either format's signature.</summary>
    static byte[] Head(string path)
    {
        WeightsFiles.RequireFile(path);
        try
        {
            using var f = File.OpenRead(path);
            var head = new byte[9];
            int n = 0, got;
            while (n < head.Length && (got = f.Read(head, n, head.Length - n)) > 0) n += got;
            return head[..n];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WeightsException($"'{path}' could not be read: {e.Message}", e);
        }
    }

    /// <summary>
    /// HDF5 by its signature; a checkpoint by the '{' that opens a safetensors JSON header after its 8-byte
    /// length. Anything else is refused here, so that a file that is neither is not described as a broken one.
    /// </summary>
    static Kind Detect(string path)
    {
        var head = Head(path);
        if (head.Length >= 8 && head.AsSpan(0, 8).SequenceEqual(Hdf5Magic)) return Kind.Hdf5;
        if (head.Length == 9 && head[8] == (byte)'{') return Kind.Checkpoint;
        throw new WeightsException($"'{path}' is neither Keras HDF5 weights (no HDF5 signature) nor an Xception.Gpu checkpoint (no safetensors header); expected a .h5 file or a .safetensors checkpoint");
    }

    /// <summary>
    /// The configuration stored with the weights: a checkpoint's own, or the one this project stores in the
    /// .h5 files it writes; for other Keras files the classes (from 'predictions') and whether it has the
    /// classifier, everything else from <paramref name="fallback"/>.
    /// </summary>
    public static XceptionConfig ConfigOf(string path, XceptionConfig fallback)
    {
        if (Detect(path) == Kind.Hdf5) return KerasH5.ConfigOf(path, fallback);
        var header = SafeTensors.ReadHeader(path);
        if (!header.Metadata.TryGetValue("config", out var json) || header.Metadata.GetValueOrDefault("format") != Format)
            throw new WeightsException($"'{path}' is a safetensors file but not an Xception.Gpu checkpoint (no '{Format}' configuration in its metadata)");
        var config = ParseConfig(path, json, "metadata 'config'");
        var shapes = header.Tensors.ToDictionary(t => t.Name, t => t.Shape.Select(d => (ulong)d).ToArray());
        CheckConfig(path, config, name => shapes.GetValueOrDefault(name));
        return config;
    }

    /// <summary>A configuration read from a weight file; whatever is wrong with it is said with the file's name.</summary>
    internal static XceptionConfig ParseConfig(string path, string json, string where)
    {
        try
        {
            return XceptionConfig.FromJson(json);
        }
        catch (XceptionException e)
        {
            throw new WeightsException($"'{path}' holds a bad model configuration ({where}): {e.Message}", e);
        }
    }

    /// <summary>
    /// Checks a stored configuration against a few tensors that follow from it (the first convolution, the
    /// last separable convolution and the classifier): a configuration that describes another model is
    /// refused before anyone builds that model, which could be far larger than the file.
    /// </summary>
    internal static void CheckConfig(string path, XceptionConfig c, Func<string, ulong[]?> shapeOf)
    {
        var plan = XceptionPlan.Of(c);
        var (stem, last) = (plan.Stem[0], plan.Exit[^1]);
        string exit = last.Name;
        var expected = new List<(string Name, int[] Shape)>
        {
            ($"{stem.Name}/kernel", [stem.Kernel, stem.Kernel, c.InputChannels, stem.Filters]),
            ($"{exit}_sepconv{last.Widths.Count}/pointwise_kernel", [1, 1, last.Widths[^2], last.Widths[^1]]),
        };
        if (c.IncludeTop) expected.Add(("predictions/kernel", [plan.Features, c.Classes]));
        foreach (var (name, shape) in expected)
        {
            var found = shapeOf(name);
            if (found is null || !found.SequenceEqual(shape.Select(d => (ulong)d)))
                throw new WeightsException($"'{path}': its stored configuration does not match its weights: it implies '{name}' of shape ({string.Join(", ", shape)}), " +
                                           (found is null ? "the file has no such tensor" : $"the file has ({string.Join(", ", found)})"));
        }
        // With fewer middle blocks stated than stored, block{6+M} is a middle block, which has a third separable convolution.
        if (shapeOf($"{exit}_sepconv3/pointwise_kernel") is not null)
            throw new WeightsException($"'{path}': its stored configuration does not match its weights: it states {c.MiddleBlocks} middle-flow blocks, the file has more");
    }

    /// <summary>Loads every weight of <paramref name="model"/> from a Keras .h5 or a checkpoint; all must be there with their shapes.</summary>
    public static void Load(Model model, string path) => Load(model, path, new WeightsLoadOptions());

    /// <summary>
    /// Loads weights with options; with <see cref="WeightsLoadOptions.NewHead"/> (transfer learning) every layer below
    /// the classifier comes from the file and the classifier (<see cref="Model.Classifier"/>, Xception's
    /// <c>predictions</c>) starts fresh with Keras' Dense initialization: Glorot-uniform kernel, zero bias. The file
    /// may then hold a classifier of any class count, or none (a no-top file). Nothing is set when the file is
    /// refused. Returns which layers were loaded and which started fresh.
    /// </summary>
    public static WeightsLoadResult Load(Model model, string path, WeightsLoadOptions options)
    {
        var fresh = options.NewHead ? new HashSet<Layer> { model.Classifier } : [];
        if (Detect(path) == Kind.Hdf5) KerasH5.Load(model, path, fresh);
        else
        {
            var (tensors, meta) = SafeTensors.Read(path);
            Prepare(model, path, tensors, meta, fresh)();
        }
        foreach (var l in fresh) model.Initialize(l, options.Seed);
        var withWeights = model.Layers.Where(l => l.Parameters.Count > 0).ToList();
        return new WeightsLoadResult(withWeights.Where(l => !fresh.Contains(l)).Select(l => l.Name).ToList(),
            withWeights.Where(fresh.Contains).Select(l => l.Name).ToList());
    }

    /// <summary>Writes Keras HDF5 when the path ends in .h5 or .hdf5, else a checkpoint.</summary>
    public static void Save(Model model, XceptionConfig config, string path, IReadOnlyDictionary<string, string>? metadata = null,
        IEnumerable<NamedTensor>? extra = null)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        // The configuration goes into the .h5 too: without it only the full model could be read back.
        if (ext is ".h5" or ".hdf5") { KerasH5.Save(model, path, config); return; }
        SaveSafeTensors(model, config, path, metadata, extra);
    }

    /// <summary>
    /// Writes a checkpoint, whatever the path's extension: safetensors with every weight named as Keras names it
    /// (<c>layer/weight</c>, e.g. <c>block1_conv1/kernel</c>, <c>block2_sepconv1/depthwise_kernel</c>; the shortcuts
    /// <c>conv2d_1</c>.., as the official Keras file), float32 in Keras' shapes (convolutions HWIO), and the
    /// configuration in the metadata (<c>format</c>, <c>config</c>). Without <paramref name="extra"/> (training
    /// state) it is a plain weights file that any safetensors reader loads as a name-to-tensor map.
    /// </summary>
    public static void SaveSafeTensors(Model model, XceptionConfig config, string path, IReadOnlyDictionary<string, string>? metadata = null,
        IEnumerable<NamedTensor>? extra = null)
    {
        model.SyncToHost();
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>())
        {
            ["format"] = Format,
            ["config"] = config.ToJson(),
        };
        var tensors = model.Layers.SelectMany(l => l.Parameters.Select(p => new NamedTensor($"{l.Name}/{p.Name}", p.KerasShape, p.Host)));
        SafeTensors.Write(path, tensors.Concat(extra ?? []), meta);
    }

    /// <summary>
    /// Checks that a read checkpoint holds every weight of the model with its shape; the returned action sets
    /// them. Nothing is set before everything was checked, so a refusal leaves the model as it was (and a
    /// caller can check more, such as the optimizer state, before setting anything).
    /// </summary>
    internal static Action Prepare(Model model, string path, List<NamedTensor> tensors, Dictionary<string, string> meta, IReadOnlySet<Layer>? skip = null)
    {
        if (meta.GetValueOrDefault("format") != Format)
            throw new WeightsException($"'{path}' is a safetensors file but not an Xception.Gpu checkpoint (metadata format '{meta.GetValueOrDefault("format")}', expected '{Format}')");
        var byName = tensors.ToDictionary(t => t.Name); // names are unique: the reader refuses a name given twice
        var values = new List<(Parameter, float[])>();
        foreach (var l in model.Layers.Where(l => skip is null || !skip.Contains(l)))
            foreach (var p in l.Parameters)
            {
                string name = $"{l.Name}/{p.Name}";
                if (!byName.TryGetValue(name, out var t))
                    throw new WeightsException($"checkpoint '{path}' has no tensor '{name}'; was it saved from another model configuration?");
                if (!t.Shape.SequenceEqual(p.KerasShape))
                    throw new WeightsException($"{name}: expected shape ({string.Join(", ", p.KerasShape)}), found ({string.Join(", ", t.Shape)}) in '{path}'");
                values.Add((p, t.Data));
            }
        return () => { foreach (var (p, v) in values) p.Set(v); };
    }
}
