using Xception.Gpu.Graph;
using Xception.Gpu.IO;
using Xception.Gpu.Ops;

namespace Xception.Gpu.Training;

public enum OptimizerKind { Sgd, RmsProp }

/// <summary>The optimizer's settings. Defaults: SGD; RMSprop uses Keras' rho 0.9 and epsilon 1e-7 unless set.</summary>
public sealed record OptimizerSettings
{
    public OptimizerKind Kind { get; init; } = OptimizerKind.Sgd;
    public float Momentum { get; init; } = 0.9f;
    public bool Nesterov { get; init; }
    public float Rho { get; init; } = 0.9f;
    public float Epsilon { get; init; } = 1e-7f;
    /// <summary>L2 weight decay: adds decay * w to the gradient of every kernel (not to biases or batch-norm parameters).</summary>
    public float WeightDecay { get; init; }
}

/// <summary>
/// The optimizer's per-parameter state on the device (velocity for SGD; mean square and momentum for
/// RMSprop) and the update of every trainable parameter from its gradient. Every optimizable parameter has its
/// slots, frozen or not, so a layer can be frozen or unfrozen between steps and checkpoints keep one format; a
/// frozen layer's parameters and slots are left exactly as they are.
/// </summary>
public sealed class OptimizerState : IDisposable
{
    readonly Model model;
    readonly OptimizerSettings s;
    readonly Dictionary<Parameter, (string Name, Tensor<float> A, Tensor<float>? B)> slots = new();
    OptimizerGroup? group;

    public OptimizerState(Model model, OptimizerSettings settings)
    {
        this.model = model;
        s = settings;
        var d = model.Device ?? throw new InvalidOperationException("bind the model to a device before creating its optimizer");
        foreach (var l in model.Layers)
            foreach (var p in l.Parameters.Where(p => p.Optimizable))
                slots[p] = ($"{l.Name}/{p.Name}", Tensor.Zeros(d, p.Shape.ToArray()),
                    s.Kind == OptimizerKind.RmsProp ? Tensor.Zeros(d, p.Shape.ToArray()) : null);
    }

    public OptimizerSettings Settings => s;

    /// <summary>One update of every trainable parameter with learning rate <paramref name="lr"/>.</summary>
    public void Step(float lr)
    {
        var g = Group();
        if (s.Kind == OptimizerKind.Sgd) g.Sgd(lr, s.Momentum, s.Nesterov);
        else g.RmsProp(lr, s.Rho, s.Momentum, s.Epsilon);
    }

    /// <summary>
    /// The trainable parameters' update group, rebuilt when a layer was frozen or unfrozen or a parameter's tensors
    /// were replaced (a frozen layer gets no update, and its velocity does not decay either).
    /// </summary>
    OptimizerGroup Group()
    {
        int i = 0;
        bool same = group is not null;
        foreach (var (p, _) in slots)
        {
            if (!p.Trainable) continue;
            if (p.Value is null || p.Grad is null) throw new InvalidOperationException($"{p.Owner?.Name}/{p.Name} is not on a device: was the model disposed?");
            same = same && i < group!.Slots.Count && group.Slots[i].W == p.Value && group.Slots[i].G == p.Grad;
            i++;
        }
        if (same && i == group!.Slots.Count) return group;
        group?.Dispose();
        group = new OptimizerGroup(model.Device!, slots.Where(kv => kv.Key.Trainable).Select(kv =>
        {
            var (p, (_, a, b)) = (kv.Key, kv.Value);
            float wd = p.Role == ParameterRole.Kernel ? s.WeightDecay : 0f; // Keras puts regularizers on kernels
            return new OptimizerSlot(p.Value!, p.Grad!, a, b, wd);
        }).ToList());
        return group;
    }

    /// <summary>The state as named tensors for a checkpoint ("optimizer/layer/param/slot").</summary>
    public IEnumerable<NamedTensor> Export()
    {
        foreach (var (p, (name, a, b)) in slots)
        {
            yield return new NamedTensor($"optimizer/{name}/{(s.Kind == OptimizerKind.Sgd ? "velocity" : "mean_square")}", p.KerasShape, a.ToArray());
            if (b is not null) yield return new NamedTensor($"optimizer/{name}/momentum", p.KerasShape, b.ToArray());
        }
    }

    /// <summary>
    /// Restores the state saved by <see cref="Export"/>; every slot must be there with its shape. Everything is
    /// checked before the first slot is copied, so a refused file leaves the state as it was.
    /// </summary>
    public void Import(IReadOnlyDictionary<string, NamedTensor> tensors, string source) => Prepare(tensors, source)();

    /// <summary>Checks every slot against <paramref name="tensors"/>; the returned action copies them (and cannot fail on the file).</summary>
    public Action Prepare(IReadOnlyDictionary<string, NamedTensor> tensors, string source)
    {
        var copies = new List<(Tensor<float> Into, float[] From)>();
        foreach (var (p, (name, a, b)) in slots)
        {
            copies.Add((a, Find($"optimizer/{name}/{(s.Kind == OptimizerKind.Sgd ? "velocity" : "mean_square")}", p)));
            if (b is not null) copies.Add((b, Find($"optimizer/{name}/momentum", p)));
        }
        return () => { foreach (var (into, from) in copies) into.CopyFrom(from); };

        float[] Find(string key, Parameter p)
        {
            if (!tensors.TryGetValue(key, out var t))
                throw new WeightsException($"checkpoint '{source}' has no optimizer state '{key}': was it saved with another optimizer?");
            if (!t.Shape.SequenceEqual(p.KerasShape) || t.Data.Length != p.Length)
                throw new WeightsException($"checkpoint '{source}': optimizer state '{key}' has shape ({string.Join(", ", t.Shape)}), {t.Data.Length} values; " +
                                           $"expected ({string.Join(", ", p.KerasShape)}), {p.Length} values");
            return t.Data;
        }
    }

    public void Dispose()
    {
        group?.Dispose();
        group = null;
        foreach (var (_, a, b) in slots.Values) { a.Dispose(); b?.Dispose(); }
        slots.Clear();
    }
}
