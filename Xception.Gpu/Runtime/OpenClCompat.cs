namespace Xception.Gpu.Runtime;

using System.Collections.Concurrent;
using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.OpenCL;

/// <summary>
/// Lets ILGPU 1.5.3 run on OpenCL devices that compile OpenCL C 2.0 but report no generic address space
/// (Mesa's rusticl, such as its llvmpipe CPU device). ILGPU's OpenCL code uses <c>__generic</c> pointers and so
/// refuses such devices; rusticl's compiler accepts <c>__generic</c> when the program is built with
/// <c>-cl-std=CL2.0</c>. Two ILGPU-internal settings on the device object make ILGPU do that:
/// <c>CLCapabilityContext.GenericAddressSpace</c> (internal setter) := true, and <c>CLDevice.DeviceVersion</c>
/// (private setter) := <see cref="CLDeviceVersion.CL20"/> (a 3.0 device would get <c>-cl-std=CL3.0</c>, under
/// which rusticl refuses <c>__generic</c>). This is the only place that touches ILGPU's internals. They are
/// applied to a device only after a probe kernel built that way compiles and computes the right answer on it;
/// the probe's result is kept per device for the process. Devices that report the generic address space need
/// none of this.
/// </summary>
public static class OpenClCompat
{
    /// <summary>The ILGPU version whose internals the overrides are written against.</summary>
    public const string PinnedIlgpuVersion = "1.5.3";

    /// <summary>The device note of an OpenCL device that runs through the overrides.</summary>
    public const string OverrideNote = "runs as OpenCL C 2.0 after a probe (no generic address space reported)";

    const string GenericMember = "ILGPU.Runtime.OpenCL.CLCapabilityContext.GenericAddressSpace (setter)";
    const string VersionMember = "ILGPU.Runtime.OpenCL.CLDevice.DeviceVersion (setter)";

    /// <summary>How an OpenCL device can run ILGPU kernels, if at all.</summary>
    public enum Support
    {
        /// <summary>The device reports the generic address space: ILGPU runs it as it is.</summary>
        Native,
        /// <summary>The probe passed: the device runs with the overrides applied.</summary>
        WithOverrides,
        /// <summary>The device cannot run ILGPU kernels (the probe failed or could not run).</summary>
        None,
    }

    /// <summary>
    /// A device's support; when it has none, why (one line); the warp size its accelerator reported during the
    /// probe (ILGPU's device object says 0 for vendors it does not know until an accelerator exists).
    /// </summary>
    public sealed record ProbeResult(Support Support, string? Reason, int WarpSize = 0);

    static readonly ConcurrentDictionary<string, ProbeResult> probed = new();

    /// <summary>
    /// The two setters the overrides call, or a <see cref="DeviceException"/> naming the one that is missing:
    /// an ILGPU other than <see cref="PinnedIlgpuVersion"/> may have renamed or removed them, and silently
    /// running without them would only move the failure to a confusing compile error later.
    /// </summary>
    public static (MethodInfo Generic, MethodInfo Version) Setters()
    {
        var generic = typeof(CLCapabilityContext).GetProperty("GenericAddressSpace",
            BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)?.GetSetMethod(nonPublic: true);
        var version = typeof(CLDevice).GetProperty("DeviceVersion",
            BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)?.GetSetMethod(nonPublic: true);
        string ilgpu = typeof(Context).Assembly.GetName().Version?.ToString(3) ?? "?";
        if (generic is null || generic.GetParameters() is not [{ ParameterType: var gt }] || gt != typeof(bool))
            throw new DeviceException($"OpenCL compatibility: ILGPU {ilgpu} has no {GenericMember}; " +
                                      $"the overrides are written for ILGPU {PinnedIlgpuVersion} (Runtime/OpenClCompat.cs)");
        if (version is null || version.GetParameters() is not [{ ParameterType: var vt }] || vt != typeof(CLDeviceVersion))
            throw new DeviceException($"OpenCL compatibility: ILGPU {ilgpu} has no {VersionMember}; " +
                                      $"the overrides are written for ILGPU {PinnedIlgpuVersion} (Runtime/OpenClCompat.cs)");
        return (generic, version);
    }

    /// <summary>
    /// True for a CPU-type OpenCL device (CL_DEVICE_TYPE_CPU, such as llvmpipe): it emulates a GPU on the
    /// processor and is slower there than the CPU accelerator, so <c>auto</c> skips it.
    /// </summary>
    public static bool IsCpuType(CLDevice device) => device.DeviceType.HasFlag(CLDeviceType.CL_DEVICE_TYPE_CPU);

    /// <summary>
    /// Whether and how the device at <paramref name="index"/> (in the order of
    /// <c>Context.Create(b => b.OpenCL(_ => true))</c>) can run ILGPU kernels. Probes it once per process.
    /// </summary>
    public static ProbeResult Check(CLDevice device, int index)
    {
        if (device.Capabilities.GenericAddressSpace) return new(Support.Native, null);
        return probed.GetOrAdd(Key(device, index), _ => Probe(index));
    }

    /// <summary>
    /// Applies the overrides to a device of a freshly created context when its probe passed (the overrides
    /// live on ILGPU's device object, which every context creates anew). Does nothing for native devices.
    /// </summary>
    public static void Prepare(CLDevice device, int index)
    {
        var r = Check(device, index);
        if (r.Support == Support.WithOverrides) Apply(device);
        else if (r.Support == Support.None)
            throw new DeviceException($"device opencl:{index} ({device.Name}) cannot run kernels: {r.Reason}");
    }

    static string Key(CLDevice d, int index) => $"{index}|{d.PlatformName}|{d.Name}";

    static void Apply(CLDevice device)
    {
        var (generic, version) = Setters();
        generic.Invoke(device.Capabilities, [true]);
        version.Invoke(device, [CLDeviceVersion.CL20]);
    }

    /// <summary>Probe size: two groups, so the probe checks group indexing as well as the barrier.</summary>
    const int ProbeGroup = 64, ProbeLength = 2 * ProbeGroup;

    /// <summary>
    /// y[i] = a * x[neighbour] + y[i], where the neighbour's value comes through shared memory after a barrier:
    /// the probe covers what the op kernels rely on (views through generic pointers, shared memory, barriers).
    /// </summary>
    static void ProbeKernel(ArrayView<float> x, ArrayView<float> y, float a)
    {
        var tile = SharedMemory.Allocate<float>(ProbeGroup);
        int i = Grid.GlobalIndex.X;
        tile[Group.IdxX] = x[i];
        Group.Barrier();
        y[i] = a * tile[(Group.IdxX + 1) % ProbeGroup] + y[i];
    }

    /// <summary>Runs the probe in its own context: a failed OpenCL compile leaves an ILGPU context unusable.</summary>
    static ProbeResult Probe(int index)
    {
        // A missing setter is a broken build, not a device without support: let it surface.
        Setters();
        try
        {
            using var context = Context.Create(b => b.OpenCL(_ => true));
            var devices = context.GetCLDevices();
            if (index >= devices.Count) return new(Support.None, "device vanished while probing");
            var device = devices[index];
            Apply(device);
            using var accelerator = device.CreateAccelerator(context);
            var kernel = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, float>(ProbeKernel);
            var x = new float[ProbeLength];
            var y = new float[ProbeLength];
            for (int i = 0; i < ProbeLength; i++) { x[i] = i * 0.25f - 3f; y[i] = 1f - i * 0.5f; }
            using var bx = accelerator.Allocate1D(x);
            using var by = accelerator.Allocate1D(y);
            kernel(accelerator.DefaultStream, new KernelConfig(ProbeLength / ProbeGroup, ProbeGroup), bx.View, by.View, 2f);
            accelerator.Synchronize();
            var got = by.GetAsArray1D();
            for (int i = 0; i < ProbeLength; i++)
            {
                int j = i / ProbeGroup * ProbeGroup + (i % ProbeGroup + 1) % ProbeGroup;
                float want = 2f * x[j] + y[i];
                if (got[i] != want)
                    return new(Support.None, $"the OpenCL C 2.0 probe kernel computed {got[i]} instead of {want} at {i}");
            }
            return new(Support.WithOverrides, null, accelerator.WarpSize);
        }
        catch (Exception e) when (e is not DeviceException)
        {
            var root = e.GetBaseException();
            string line = root.Message.Split('\n', 2)[0].Trim();
            return new(Support.None, $"the OpenCL C 2.0 probe kernel failed ({root.GetType().Name}: {line})");
        }
    }
}
