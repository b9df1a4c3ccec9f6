using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;
using Xception.Gpu.Architecture;
using Xception.Gpu.Ops;
using Xception.Gpu.Training;
using Xunit;
using Device = Xception.Gpu.Runtime.Device;

namespace Xception.Gpu.Tests.OpenCL;

/// <summary>
/// The OpenCL device path end to end: the ILGPU internals <see cref="OpenClCompat"/> relies on, how the device
/// is listed and picked, and a training step on it against the CPU accelerator. The op tests run on the
/// device through <see cref="Backends.OpenCl"/>.
/// </summary>
public class OpenClDeviceTests
{
    /// <summary>
    /// Fails loudly when an ILGPU update moves the two setters the overrides call: the fix then belongs in
    /// OpenClCompat, not in a confusing OpenCL build error on a user's machine.
    /// </summary>
    [Fact]
    public void TheIlgpuMembersTheOverridesSetExist()
    {
        var (generic, version) = OpenClCompat.Setters();
        Assert.Equal("set_GenericAddressSpace", generic.Name);
        Assert.Equal("set_DeviceVersion", version.Name);
        Assert.Equal(OpenClCompat.PinnedIlgpuVersion, typeof(Context).Assembly.GetName().Version!.ToString(3));
    }

    [Fact]
    public void ListsTheDeviceWithHowItRunsAndAutoSkipsCpuTypeOpenCl()
    {
        Backends.RequireOpenCl();
        var cl = Device.List().Where(d => d.Kind == DeviceKind.OpenCL && d.Usable).ToList();
        foreach (var d in cl)
        {
            Assert.False(string.IsNullOrEmpty(d.Note));
            Assert.True(d.WarpSize > 0, $"{d.Id} lists warp size {d.WarpSize}");
            if (!d.AutoPicks) Assert.Contains("'auto' skips it", d.Note);
        }
        if (cl.All(d => !d.AutoPicks) && !Device.List().Any(d => d.Kind == DeviceKind.Cuda && d.Usable))
        {
            using var auto = Device.Open("auto");
            Assert.Equal(DeviceKind.Cpu, auto.Kind);
        }
        using var opened = Device.Open("opencl");
        Assert.Equal(DeviceKind.OpenCL, opened.Kind);
        Assert.True(opened.UsesGpuKernels);
    }

    [Fact]
    public void KernelsCompileOncePerOpenClDevice()
    {
        var d = Backends.Get(Backends.OpenCl);
        int loads = 0;
        for (int i = 0; i < 3; i++)
            d.Load("test.opencl.relu", a => { loads++; return a.LoadStreamKernel<ArrayView<float>, int, ArrayView<float>>(Kernels.ActivationKernels.ReluForward); });
        Assert.Equal(1, loads);
        Assert.Same(Activation.On(d), Activation.On(d));
    }

    static readonly OptimizerSettings Sgd = new() { Kind = OptimizerKind.Sgd, Momentum = 0.9f };

    /// <summary>One SGD step of the mini model from the same weights and batch; returns the weights after it.</summary>
    static List<float[]> OneStep(Device d, float[] start, float[] x, int[] labels, out double seconds, out List<string> names)
    {
        var sw = Stopwatch.StartNew();
        using var m = XceptionBuilder.Build(XceptionConfig.Mini(32, 3, 10));
        names = m.Layers.SelectMany(l => l.Parameters.Select(p => $"{l.Name}/{p.Name}")).ToList();
        int offset = 0;
        foreach (var p in m.Parameters) { p.Set(start.AsSpan(offset, p.Length)); offset += p.Length; }
        m.Bind(d);
        using var opt = new OptimizerState(m, Sgd);
        int n = labels.Length;
        using var tx = Tensor.From(d, x, [n, .. m.Input.OutputShape]);
        using var dl = Tensor.Zeros(d, n, 10);
        using var lb = Tensor.Zeros<int>(d, n);
        var ex = m.Executor(n, true);
        Loss.On(d).SoftmaxCrossEntropy(ex.Forward(tx), labels, lb, dl);
        ex.Backward(dl);
        opt.Step(0.05f);
        m.SyncToHost();
        seconds = sw.Elapsed.TotalSeconds;
        return m.Parameters.Select(p => (float[])p.Host.Clone()).ToList();
    }

    [Fact]
    public void OneTrainingStepEqualsTheCpuAcceleratorsWithinFloat32()
    {
        var cl = Backends.Get(Backends.OpenCl);
        var cpu = Backends.Get(Backends.Cpu);
        float[] start;
        using (var init = XceptionBuilder.Build(XceptionConfig.Mini(32, 3, 10)))
        {
            init.Initialize(31);
            start = init.Parameters.SelectMany(p => p.Host).ToArray();
        }
        int batch = 4;
        var x = TestData.Uniform(batch * 32 * 32 * 3, 32);
        var labels = Enumerable.Range(0, batch).Select(i => i * 7 % 10).ToArray();
        var onCpu = OneStep(cpu, start, x, labels, out double cpuSeconds, out var names);
        var onCl = OneStep(cl, start, x, labels, out double clSeconds, out _);

        // Compare the updates (weights after minus before), tensor by tensor, relative to the CPU's update:
        // the two devices sum in different orders (GPU tiles against CPU chunks), so float32 rounding differs
        // at the 1e-7 level per op and compounds through 40 layers forward and back and through batch norm's
        // division by small batch variances to ~1e-5 of an update; 1e-4 leaves headroom and still catches any
        // wrong kernel, which would be off by order 1.
        double num = 0, den = 0, worst = 0;
        string worstName = "";
        int offset = 0, k = 0;
        foreach (var (a, b) in onCl.Zip(onCpu))
        {
            double tn = 0, td = 0;
            for (int j = 0; j < a.Length; j++)
            {
                double da = a[j] - (double)start[offset + j], db = b[j] - (double)start[offset + j];
                tn += (da - db) * (da - db); td += db * db;
            }
            num += tn; den += td;
            if (td > 1e-20 && Math.Sqrt(tn / td) > worst) { worst = Math.Sqrt(tn / td); worstName = names[k]; }
            offset += a.Length; k++;
        }
        double whole = Math.Sqrt(num / den);
        TestContext.Current.SendDiagnosticMessage(
            $"one SGD step, mini model, batch {batch}: opencl {clSeconds:F2} s, cpu {cpuSeconds:F2} s; update error {whole:E2} (worst tensor {worstName} {worst:E2})");
        Assert.True(whole <= 1e-4, $"the opencl update differs from the CPU accelerator's by {whole:E2} (worst {worstName}: {worst:E2})");
    }
}
