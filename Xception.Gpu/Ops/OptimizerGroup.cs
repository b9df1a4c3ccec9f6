using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels.Cpu;

namespace Xception.Gpu.Ops;

/// <summary>
/// One parameter tensor of an <see cref="OptimizerGroup"/>: its values <paramref name="W"/>, gradient
/// <paramref name="G"/>, optimizer slots (<paramref name="A"/>: SGD's velocity or RMSprop's mean square;
/// <paramref name="B"/>: RMSprop's momentum, null for SGD) and L2 weight decay.
/// </summary>
public readonly record struct OptimizerSlot(Tensor<float> W, Tensor<float> G, Tensor<float> A, Tensor<float>? B, float WeightDecay);

/// <summary>
/// A fixed list of parameter tensors updated together, with the arithmetic of <see cref="Optimizer"/>. On GPUs (and
/// the GPU-shaped CPU) each tensor is one launch of the per-tensor kernel. On the CPU accelerator one launch updates
/// them all (<see cref="OptimizerCpuKernels"/>), reading a table of the tensors' addresses built here once: a
/// model's hundred small launches cost more there than the arithmetic. The tensors must stay allocated while the
/// group is used (build a new group when any is replaced).
/// </summary>
public sealed class OptimizerGroup : IDisposable
{
    readonly Device d;
    readonly OptimizerSlot[] slots;
    readonly Tensor<OptimizerCpuRow>? table;
    readonly long total;
    readonly Action<KernelConfig, ArrayView<OptimizerCpuRow>, OptimizerCpuArgs>? update;

    public OptimizerGroup(Device d, IReadOnlyList<OptimizerSlot> slots)
    {
        this.d = d;
        this.slots = slots.ToArray();
        foreach (var s in this.slots)
        {
            Expect.Device("optimizer", d, ("weights", s.W), ("gradient", s.G), ("slot", s.A));
            Expect.SameShape("optimizer", "gradient", s.G, "weights", s.W);
            Expect.SameShape("optimizer", "slot", s.A, "weights", s.W);
            if (s.B is not null)
            {
                Expect.Device("optimizer", d, "second slot", s.B);
                Expect.SameShape("optimizer", "second slot", s.B, "weights", s.W);
            }
            total += s.W.Length;
        }
        if (d.UsesGpuKernels || this.slots.Length == 0) return;
        update = d.Load("optimizer.cpu_simd.update", a => a.LoadStreamKernel<ArrayView<OptimizerCpuRow>, OptimizerCpuArgs>(OptimizerCpuKernels.Update));
        var rows = this.slots.Select(s => new OptimizerCpuRow
        {
            W = Address(s.W), G = Address(s.G), A = Address(s.A), B = s.B is null ? 0 : Address(s.B),
            Length = s.W.Length, WeightDecay = s.WeightDecay,
        }).ToArray();
        table = Tensor.From(d, rows, rows.Length);
    }

    static long Address(Tensor<float> t) => (long)t.View.LoadEffectiveAddressAsPtr();

    /// <summary>The tensors, in the order given.</summary>
    public IReadOnlyList<OptimizerSlot> Slots => slots;

    /// <summary>SGD with momentum on every tensor (see <see cref="Optimizer.Sgd"/>).</summary>
    public void Sgd(float lr, float momentum, bool nesterov)
    {
        if (update is null)
        {
            var op = Optimizer.On(d);
            foreach (var s in slots) op.Sgd(s.W, s.G, s.A, lr, momentum, nesterov, s.WeightDecay);
            return;
        }
        Launch(new OptimizerCpuArgs { Kind = 0, Lr = lr, Momentum = momentum, Nesterov = nesterov ? 1 : 0 });
    }

    /// <summary>RMSprop on every tensor (see <see cref="Optimizer.RmsProp"/>); every slot needs its second tensor.</summary>
    public void RmsProp(float lr, float rho, float momentum, float epsilon)
    {
        if (slots.Any(s => s.B is null))
            throw new InvalidOperationException("RMSprop needs two slot tensors (mean square and momentum) for every parameter");
        if (update is null)
        {
            var op = Optimizer.On(d);
            foreach (var s in slots) op.RmsProp(s.W, s.G, s.A, s.B!, lr, rho, momentum, epsilon, s.WeightDecay);
            return;
        }
        Launch(new OptimizerCpuArgs { Kind = 1, Lr = lr, Rho = rho, Momentum = momentum, Epsilon = epsilon });
    }

    void Launch(OptimizerCpuArgs args)
    {
        args.Rows = slots.Length;
        args.Total = total;
        args.Units = d.CpuCores;
        update!(d.CpuWorkers, table!.View, args);
    }

    public void Dispose() => table?.Dispose();
}
