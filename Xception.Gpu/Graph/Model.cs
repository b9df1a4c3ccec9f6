using Xception.Gpu.Graph.Layers;

namespace Xception.Gpu.Graph;

/// <summary>How batch normalization layers run in a training step (<see cref="Model.BatchNormMode"/>).</summary>
public enum BatchNormMode
{
    /// <summary>Keras' behaviour: a frozen batch norm runs in inference mode, a trainable one in training mode.</summary>
    Auto,

    /// <summary>Every batch norm normalizes with the batch's statistics and moves its moving ones, frozen or not (before TF 2, Keras did this); frozen layers' gamma and beta still get no update.</summary>
    Train,

    /// <summary>Every batch norm runs in inference mode while its gamma and beta still train where not frozen: phase 2 of Keras' fine-tuning guide (<c>model(x, training=False)</c> with the base unfrozen).</summary>
    Inference,
}

/// <summary>
/// A layer graph in topological order (the order the builder created the layers, which is Keras' order),
/// with one input and one output. Owns its parameters; bound to at most one device at a time.
/// </summary>
public sealed class Model : IDisposable
{
    readonly Dictionary<(int Batch, bool Training), Executor> executors = new();

    public Model(string name, IReadOnlyList<Layer> layers)
    {
        Name = name;
        Layers = layers;
        if (layers.Count == 0 || layers[0] is not InputLayer input)
            throw new ArgumentException("a model starts with its InputLayer");
        Input = input;
        Output = layers[^1];
        var seen = new HashSet<string>();
        for (int i = 0; i < layers.Count; i++)
        {
            var l = layers[i];
            if (!seen.Add(l.Name)) throw new ArgumentException($"layer name '{l.Name}' is used twice");
            foreach (var src in l.Inputs)
                if (!layers.Take(i).Contains(src)) throw new ArgumentException($"layer {l.Name} reads {src.Name}, which does not come before it");
            l.Index = i;
            var shapes = l.Inputs.Select(x => x.OutputShape).ToList();
            l.OutputShape = l.InferShape(shapes);
            l.CreateParameters(shapes);
            foreach (var p in l.Parameters) p.Owner = l;
        }
    }

    public string Name { get; }
    public IReadOnlyList<Layer> Layers { get; }
    public InputLayer Input { get; }
    public Layer Output { get; }
    public Device? Device { get; private set; }

    public IEnumerable<Parameter> Parameters => Layers.SelectMany(l => l.Parameters);
    public long TotalParams => Parameters.Sum(p => (long)p.Length);
    public long TrainableParams => Parameters.Where(p => p.Trainable).Sum(p => (long)p.Length);

    public Layer this[string name] => Layers.FirstOrDefault(l => l.Name == name)
        ?? throw new LayerNotFoundException(name, $"{Name} has no layer '{name}'; expected a layer name such as {SomeLayerNames()}");

    /// <summary>A few layer names, spread over the model, for messages about a name that does not exist.</summary>
    string SomeLayerNames()
    {
        var named = Layers.Where(l => l != Input).ToList();
        var picks = new[] { 0, 1, named.Count / 4, named.Count / 2, 3 * named.Count / 4, named.Count - 2, named.Count - 1 }
            .Where(i => i >= 0 && i < named.Count).Distinct().Select(i => named[i].Name);
        return string.Join(", ", picks) + $" ({named.Count} layers in all)";
    }

    /// <summary>
    /// How batch norm layers behave in a training step. Inference mode in Keras' <c>training=False</c> sense: the
    /// moving statistics normalize, they are not moved, and the backward pass treats them as constants.
    /// </summary>
    public BatchNormMode BatchNormMode { get; set; } = BatchNormMode.Auto;

    /// <summary>
    /// Whether <paramref name="batchNorm"/> normalizes with the batch's statistics (and moves its moving ones) in
    /// a training step, by <see cref="BatchNormMode"/> and the layer's <see cref="Layer.Trainable"/>.
    /// </summary>
    public bool UsesBatchStatistics(Layer batchNorm) => BatchNormMode switch
    {
        BatchNormMode.Train => true,
        BatchNormMode.Inference => false,
        _ => batchNorm.Trainable,
    };

    /// <summary>
    /// The classifier: the last layer with parameters (Xception's <c>predictions</c> Dense). What
    /// <see cref="FreezeBase"/> keeps trainable and what a new head replaces.
    /// </summary>
    public Layer Classifier => Layers.LastOrDefault(l => l.Parameters.Count > 0)
        ?? throw new InvalidOperationException($"{Name} has no layer with parameters, so no classifier");

    /// <summary>
    /// Freezes every layer below the classifier (the base) and unfreezes the classifier and anything after it:
    /// phase 1 of Keras' transfer-learning guide (<c>base_model.trainable = False</c>).
    /// </summary>
    public void FreezeBase() => FreezeBelow(Classifier.Index);

    /// <summary>
    /// Freezes every layer up to and including <paramref name="upTo"/> (a Keras layer name, in model order) and
    /// unfreezes every layer after it, e.g. <c>Freeze(upTo: "block13_sepconv2_bn")</c> fine-tunes only the exit flow
    /// and the classifier. Throws <see cref="LayerNotFoundException"/> naming a few valid names when there is no such layer.
    /// </summary>
    public void Freeze(string upTo) => FreezeBelow(this[upTo].Index + 1);

    /// <summary>Makes every layer trainable again (phase 2 of the guide: <c>base_model.trainable = True</c>).</summary>
    public void Unfreeze() => FreezeBelow(0);

    void FreezeBelow(int firstTrainable)
    {
        foreach (var l in Layers) l.Trainable = l.Index >= firstTrainable;
    }

    /// <summary>The frozen layers' names, in model order (empty when nothing is frozen).</summary>
    public IReadOnlyList<string> FrozenLayers => Layers.Where(l => !l.Trainable && l != Input).Select(l => l.Name).ToList();

    /// <summary>
    /// Freezes exactly the named layers and unfreezes the rest (restoring <see cref="FrozenLayers"/>, e.g. from a
    /// checkpoint); every name must exist. Nothing changes when a name is refused.
    /// </summary>
    public void SetFrozen(IEnumerable<string> names)
    {
        var frozen = names.Select(n => this[n]).ToHashSet();
        foreach (var l in Layers) l.Trainable = !frozen.Contains(l);
    }

    /// <summary>Copies which layers are frozen and the batch norm mode from a model of the same layers (a data-parallel replica's source).</summary>
    public void CopyTrainingModeFrom(Model other)
    {
        if (other.Layers.Count != Layers.Count) throw new ArgumentException($"{Name} has {Layers.Count} layers, {other.Name} {other.Layers.Count}: not replicas of one model");
        for (int i = 0; i < Layers.Count; i++) Layers[i].Trainable = other.Layers[i].Trainable;
        BatchNormMode = other.BatchNormMode;
    }

    /// <summary>
    /// Keras' default initial values: Glorot-uniform kernels (fan-in and fan-out over Keras' kernel shape),
    /// zero biases and betas, unit gammas and moving variances, zero moving means.
    /// </summary>
    public void Initialize(int seed)
    {
        var rnd = new Random(seed);
        foreach (var p in Parameters) InitialValues(p, rnd);
    }

    /// <summary>
    /// Keras' default initial values (as <see cref="Initialize(int)"/>), each parameter from its own generator seeded
    /// by (<paramref name="seed"/>, layer name, parameter name) instead of one generator over all of them in order.
    /// Two models that differ in some layers (a study's variants: shortcuts on or off, another spatial kernel)
    /// then start with identical values in every parameter they share by name and shape.
    /// </summary>
    public void InitializeByName(int seed)
    {
        foreach (var l in Layers)
            foreach (var p in l.Parameters)
                InitialValues(p, new Random(NameSeed(seed, $"{l.Name}/{p.Name}")));
    }

    /// <summary>A generator seed from a seed and a name: FNV-1a over the name's characters, mixed with the seed (stable across runs and .NET versions).</summary>
    static int NameSeed(int seed, string name)
    {
        ulong h = 14695981039346656037UL ^ (uint)seed;
        foreach (char ch in name) h = (h ^ ch) * 1099511628211UL;
        h ^= h >> 29;
        return (int)(h & 0x7FFFFFFF);
    }

    /// <summary>
    /// Keras' default initial values (as <see cref="Initialize(int)"/>) for one layer's parameters only: a fresh
    /// classifier on a loaded base.
    /// </summary>
    public void Initialize(Layer layer, int seed)
    {
        if (!Layers.Contains(layer)) throw new LayerNotFoundException(layer.Name, $"{Name} has no layer {layer.Name}");
        var rnd = new Random(seed);
        foreach (var p in layer.Parameters) InitialValues(p, rnd);
    }

    static void InitialValues(Parameter p, Random rnd)
    {
        {
            var v = new float[p.Length];
            if (p.Role == ParameterRole.Kernel)
            {
                var k = p.KerasShape;
                long rf = 1;
                for (int i = 0; i < k.Length - 2; i++) rf *= k[i];
                double fanIn = k.Length >= 2 ? k[^2] * rf : k[0], fanOut = k.Length >= 2 ? k[^1] * rf : k[0];
                double a = Math.Sqrt(6 / (fanIn + fanOut));
                for (int i = 0; i < v.Length; i++) v[i] = (float)((rnd.NextDouble() * 2 - 1) * a);
            }
            else if (p.Role is ParameterRole.Gamma or ParameterRole.MovingVariance) Array.Fill(v, 1f);
            p.Set(v);
        }
    }

    /// <summary>Puts the parameters on a device (moving them off the previous one).</summary>
    public void Bind(Device device)
    {
        SyncToHost();
        ReleaseExecutors();
        foreach (var p in Parameters) p.Bind(device);
        Device = device;
    }

    /// <summary>Copies the device values of every parameter back to the host copies.</summary>
    public void SyncToHost()
    {
        foreach (var p in Parameters) p.SyncToHost();
    }

    /// <summary>The executor for a batch size and mode, planned on first use and kept.</summary>
    public Executor Executor(int batch, bool training)
    {
        var d = Device ?? throw new InvalidOperationException($"{Name} is not on a device: call Bind first");
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), $"{Name}: batch size must be at least 1, got {batch}");
        if (!executors.TryGetValue((batch, training), out var e))
        {
            EnsureFits(batch, training);
            executors[(batch, training)] = e = new Executor(this, d, batch, training);
        }
        return e;
    }

    /// <summary>
    /// A lower bound of the activation memory one image needs, in bytes: in inference the largest input plus
    /// output of any layer (buffers are recycled as soon as their readers ran); in training every layer's
    /// output twice (kept for backward, and its gradient).
    /// </summary>
    public long ActivationBytesPerImage(bool training)
    {
        long Size(Layer l) => l.OutputShape.Aggregate(1L, (a, b) => a * b);
        if (training) return Layers.Sum(l => 2 * Size(l)) * sizeof(float);
        return Layers.Max(l => Size(l) + l.Inputs.Sum(Size)) * sizeof(float);
    }

    /// <summary>
    /// Refuses, before anything is allocated, a batch whose activations alone (a lower bound) exceed the
    /// device's memory: an image size of 8192 would otherwise grow for minutes before failing somewhere.
    /// </summary>
    public void EnsureFits(int batch, bool training)
    {
        var d = Device ?? throw new InvalidOperationException($"{Name} is not on a device: call Bind first");
        long per = ActivationBytesPerImage(training), weights = TotalParams * sizeof(float) * (training ? 4 : 1);
        long available = d.MemoryBytes;
        if (weights + per * (double)batch <= available) return;
        long fits = (available - weights) / Math.Max(per, 1);
        string input = string.Join("x", Input.OutputShape);
        throw new DeviceException($"{Name} at {input} needs at least {Gib(weights + per * (double)batch)} for {(training ? "training" : "inference")} at batch {batch} " +
            $"({Gib(per)} of activations per image), more than the {Gib(available)} of {d}: " +
            (fits >= 1 ? $"use a batch of at most {fits}, or a smaller image size" : "not even one image fits: use a smaller image size"));
    }

    static string Gib(double bytes) => bytes >= 1L << 30 ? $"{bytes / (1L << 30):F1} GiB" : $"{bytes / (1 << 20):F0} MiB";

    /// <summary>Float64 forward on the host, layer by layer with each op's reference (see <see cref="Layer.Reference"/>).</summary>
    internal double[] ReferenceForward(double[] input, int batch, bool training = false)
    {
        var values = new double[Layers.Count][];
        foreach (var l in Layers)
        {
            var inputs = l == Input ? new[] { input } : l.Inputs.Select(i => values[i.Index]).ToArray();
            values[l.Index] = l.Reference(inputs, batch, training);
            foreach (var i in l.Inputs)
                if (Layers.Skip(l.Index + 1).All(x => !x.Inputs.Contains(i))) values[i.Index] = null!; // free memory
        }
        return values[Output.Index];
    }

    void ReleaseExecutors()
    {
        foreach (var e in executors.Values) e.Dispose();
        executors.Clear();
    }

    public void Dispose()
    {
        ReleaseExecutors();
        foreach (var p in Parameters) p.Unbind();
        Device = null;
    }
}
