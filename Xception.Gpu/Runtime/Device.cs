namespace Xception.Gpu.Runtime;

using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

/// <summary>What <c>xception devices</c> prints about one accelerator.</summary>
/// <param name="Id">The device string that opens it, e.g. cuda:0.</param>
/// <param name="Kind">CPU accelerator, CUDA or OpenCL.</param>
/// <param name="Name">The name the driver reports.</param>
/// <param name="MemoryBytes">Its memory in bytes.</param>
/// <param name="WarpSize">Threads that run in lockstep, as ILGPU reports them (a CUDA warp).</param>
/// <param name="Multiprocessors">Streaming multiprocessors or compute units (cores on the CPU).</param>
/// <param name="Usable">Whether the device can run the kernels (<c>Device.Open</c> refuses it otherwise).</param>
/// <param name="Note">How the device runs, or why it cannot.</param>
/// <param name="AutoPicks">
/// Whether <c>auto</c> may pick the device: false for CPU-type OpenCL devices (such as Mesa's llvmpipe), which
/// emulate a GPU on the processor and are slower than the CPU accelerator; an explicit device string still
/// opens them.
/// </param>
public sealed record DeviceInfo(string Id, DeviceKind Kind, string Name, long MemoryBytes, int WarpSize,
    int Multiprocessors, bool Usable, string? Note, bool AutoPicks = true);

/// <summary>
/// One accelerator with its ILGPU context, the kernels loaded on it (once, then reused) and its scratch
/// buffers. Not thread-safe: drive one device from one thread at a time.
/// </summary>
public sealed class Device : IDisposable
{
    /// <summary>Threads per group on the CPU accelerator; small groups keep ILGPU's group barrier cheap.</summary>
    const int CpuThreadsPerWarp = 2;

    /// <summary>
    /// The most threads a CPU accelerator may have. Every thread group meets at a barrier, so threads beyond the
    /// cores only add waiting (64 threads on 2 cores ran a training step 3x slower than 2; thousands seem to
    /// hang); 256 is more cores than any machine this runs on has, enough to reproduce any run's chunking.
    /// </summary>
    public const int MaxCpuThreads = 256;

    /// <summary>Groups launched per CPU core for grid-stride kernels (measured best: 2 per core).</summary>
    const int CpuGroupsPerCore = 2;

    static Device()
    {
        // ILGPU imports the drivers by bare name ("cuda", "OpenCL"), which needs the development symlinks
        // (libcuda.so, libOpenCL.so); driver-only machines have just the versioned libraries.
        try
        {
            System.Runtime.InteropServices.NativeLibrary.SetDllImportResolver(typeof(Context).Assembly, (name, asm, path) =>
            {
                if (System.Runtime.InteropServices.NativeLibrary.TryLoad(name, asm, path, out var handle)) return handle;
                string? alt = name.ToLowerInvariant() switch
                {
                    "cuda" or "nvcuda" => "libcuda.so.1",
                    "opencl" => "libOpenCL.so.1",
                    _ => null,
                };
                return alt is not null && System.Runtime.InteropServices.NativeLibrary.TryLoad(alt, out handle) ? handle : IntPtr.Zero;
            });
        }
        catch (InvalidOperationException)
        {
            // A resolver is already set for ILGPU (by the host application): keep it.
        }
    }

    readonly DeviceSpec spec;
    Context context = null!;
    Accelerator accelerator = null!;
    readonly Dictionary<string, Delegate> kernels = new();
    readonly Dictionary<Type, object> ops = new();
    readonly Dictionary<int, MemoryBuffer1D<float, Stride1D.Dense>> scratch = new();

    readonly bool gpuShapedCpu;

    /// <summary>Cores a CPU accelerator runs on (its thread count); ignored for GPUs.</summary>
    readonly int cores;

    Device(DeviceSpec spec, bool gpuShapedCpu = false, int? cpuCores = null)
    {
        this.spec = spec;
        this.gpuShapedCpu = gpuShapedCpu;
        cores = Math.Max(1, cpuCores ?? Environment.ProcessorCount);
        Create();
    }

    /// <summary>Cores this device runs its kernels on when it is the CPU accelerator.</summary>
    public int CpuCores => cores;

    /// <summary>
    /// A CPU accelerator shaped like a GPU (groups of 256 threads), on which ops pick their GPU variants
    /// (shared-memory tiles, barriers). Slow; it exists so that tests check the GPU code paths on machines
    /// without a GPU.
    /// </summary>
    public static Device OpenGpuShapedCpu() => new(new DeviceSpec(DeviceKind.Cpu, 0), gpuShapedCpu: true);

    /// <summary>True where ops should launch their GPU variants: on GPUs and on a GPU-shaped CPU.</summary>
    public bool UsesGpuKernels => !IsCpu || gpuShapedCpu;

    /// <summary>
    /// How the matrix products multiply (<see cref="Precision"/>; default fp32). Where <see cref="HasTensorCores"/>,
    /// TF32 and bf16 run on the tensor cores; elsewhere the operands are rounded the same way and multiplied in fp32,
    /// so every device gives comparable results. Set it before the device's work starts, as PyTorch's
    /// <c>allow_tf32</c>: it applies to every model on the device.
    /// </summary>
    public Precision Precision { get; set; } = Precision.Fp32;

    /// <summary>
    /// True where TF32 and bf16 products run on tensor cores: a CUDA device of compute capability 8.0 or newer, and the
    /// GPU-shaped CPU accelerator, which runs the same kernels with the warp's fragment exchange emulated.
    /// </summary>
    public bool HasTensorCores => gpuShapedCpu || (Kind == DeviceKind.Cuda && accelerator is ILGPU.Runtime.Cuda.CudaAccelerator cuda && cuda.Architecture is { } arch && arch.Major >= 8);

    /// <summary>The device's id as a device string, e.g. <c>cpu:0</c> or <c>cuda:1</c>.</summary>
    public string Id => spec.ToString();
    public DeviceKind Kind => spec.Kind!.Value;
    public string Name => accelerator.Name;
    public bool IsCpu => Kind == DeviceKind.Cpu;
    public Accelerator Accelerator => accelerator;
    public int WarpSize => accelerator.WarpSize;
    /// <summary>
    /// Memory the device offers: a GPU's own; for the CPU accelerator, the memory this process may use
    /// (ILGPU's figure for it is not the machine's).
    /// </summary>
    public long MemoryBytes => IsCpu ? Math.Min(accelerator.MemorySize, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes) : accelerator.MemorySize;

    /// <summary>Bumped each time the context is recreated; tensors from an older generation are invalid.</summary>
    public int Generation { get; private set; }

    /// <summary>Opens a device by device string (see <see cref="DeviceSpec"/>).</summary>
    public static Device Open(string? device = "auto") => Open(DeviceSpec.Parse(device));

    /// <summary>
    /// Opens a device; a CPU accelerator then runs on <paramref name="cpuCores"/> threads (default: every core
    /// of the process). Several CPU replicas side by side share the cores this way. The core count also sets
    /// how reductions are chunked, so runs that must match bit for bit use the same count.
    /// </summary>
    public static Device Open(DeviceSpec spec, int? cpuCores = null)
    {
        if (cpuCores is < 1 or > MaxCpuThreads)
            throw new DeviceException($"a CPU accelerator runs on 1 to {MaxCpuThreads} threads, got {cpuCores}");
        if (spec.IsAuto)
        {
            var usable = List().Where(d => d.Usable).ToList();
            var best = usable.FirstOrDefault(d => d.Kind == DeviceKind.Cuda)
                       ?? usable.FirstOrDefault(d => d.Kind == DeviceKind.OpenCL && d.AutoPicks);
            spec = best is null ? new DeviceSpec(DeviceKind.Cpu, 0) : DeviceSpec.Parse(best.Id);
        }
        else if (spec.Kind != DeviceKind.Cpu)
        {
            var all = List();
            var found = all.FirstOrDefault(d => d.Id == spec.ToString());
            if (found is null)
            {
                var have = all.Where(d => d.Kind == spec.Kind).Select(d => d.Id).ToList();
                throw new DeviceException($"no device {spec}: this machine has " +
                    (have.Count == 0 ? $"no {KindName(spec.Kind!.Value)} device" : string.Join(", ", have)) +
                    "; 'xception devices' lists what there is");
            }
            if (!found.Usable) throw new DeviceException($"device {spec} ({found.Name}) cannot run kernels: {found.Note}");
        }
        return new Device(spec, cpuCores: cpuCores);
    }

    /// <summary>Every accelerator ILGPU finds, CPU first.</summary>
    public static IReadOnlyList<DeviceInfo> List()
    {
        var list = new List<DeviceInfo>();
        // OpenCL(_ => true): list devices ILGPU cannot use too, so users see why their GPU is not picked.
        using var ctx = Context.Create(b => b.Cuda().OpenCL(_ => true).CPU(CpuDevice(Environment.ProcessorCount)));
        var cpu = ctx.GetCPUDevices()[0];
        list.Add(new("cpu:0", DeviceKind.Cpu, CpuName(), GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
            cpu.WarpSize, cpu.NumMultiprocessors, true, $"{Environment.ProcessorCount} cores"));
        int i = 0;
        foreach (var d in ctx.GetCudaDevices())
            list.Add(new($"cuda:{i++}", DeviceKind.Cuda, d.Name, d.MemorySize, d.WarpSize, d.NumMultiprocessors, true,
                $"compute {d.Architecture}"));
        i = 0;
        foreach (var d in ctx.GetCLDevices())
        {
            var probe = OpenClCompat.Check(d, i);
            bool usable = probe.Support != OpenClCompat.Support.None, cpuType = OpenClCompat.IsCpuType(d);
            string note = probe.Support switch
            {
                OpenClCompat.Support.Native => $"OpenCL {d.CVersion}",
                OpenClCompat.Support.WithOverrides => OpenClCompat.OverrideNote,
                _ => probe.Reason!,
            };
            if (usable && cpuType) note += "; a CPU-type device: 'auto' skips it (the CPU accelerator is faster)";
            int warp = d.WarpSize > 0 ? d.WarpSize : probe.WarpSize;
            list.Add(new($"opencl:{i}", DeviceKind.OpenCL, d.Name, d.MemorySize, warp, d.NumMultiprocessors,
                usable, note, AutoPicks: !cpuType));
            i++;
        }
        return list;
    }

    public static string KindName(DeviceKind k) => k switch { DeviceKind.Cuda => "CUDA", DeviceKind.OpenCL => "OpenCL", _ => "CPU" };

    static CPUDevice CpuDevice(int cores) => new(CpuThreadsPerWarp, 1, cores);

    static string CpuName()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"));
            if (line is not null) return "CPU accelerator: " + line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return "CPU accelerator";
    }

    void Create()
    {
        var kind = spec.Kind!.Value;
        context = Context.Create(b =>
        {
            b.EnableAlgorithms().Optimize(OptimizationLevel.O1);
            if (kind == DeviceKind.Cpu) b.CPU(gpuShapedCpu ? new CPUDevice(32, 8, 2) : CpuDevice(cores));
            else if (kind == DeviceKind.Cuda) b.Cuda();
            // Every OpenCL device, as List numbers them; OpenClCompat decides which can run.
            else b.OpenCL(_ => true);
        });
        try
        {
            accelerator = kind switch
            {
                // Parallel mode runs groups on all cores; the small CPUDevice keeps barrier costs low.
                DeviceKind.Cpu => context.GetCPUDevices()[0].CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel),
                DeviceKind.Cuda => context.GetCudaDevices()[spec.Index].CreateAccelerator(context),
                _ => CreateOpenCl(),
            };
        }
        catch (Exception e)
        {
            context.Dispose();
            if (e is XceptionException) throw;
            throw new DeviceException($"device {spec} could not be started: {e.Message}", e);
        }
    }

    Accelerator CreateOpenCl()
    {
        var device = context.GetCLDevices()[spec.Index];
        OpenClCompat.Prepare(device, spec.Index);
        return device.CreateAccelerator(context);
    }

    /// <summary>Throws away the context and everything loaded on it, then creates a fresh one.</summary>
    void Recreate()
    {
        DisposeResources();
        Generation++;
        Create();
    }

    /// <summary>
    /// Returns the op of type <typeparamref name="T"/> bound to this device, creating it (and so loading its
    /// kernels) on first use.
    /// </summary>
    public T Op<T>(Func<Device, T> create) where T : class
    {
        if (ops.TryGetValue(typeof(T), out var op)) return (T)op;
        var made = create(this);
        ops[typeof(T)] = made;
        return made;
    }

    /// <summary>
    /// Loads a kernel once and caches it by name. A compile failure becomes a
    /// <see cref="KernelCompileException"/> naming the kernel, and the context is recreated.
    /// </summary>
    public TDelegate Load<TDelegate>(string name, Func<Accelerator, TDelegate> load) where TDelegate : Delegate
    {
        if (kernels.TryGetValue(name, out var k)) return (TDelegate)k;
        TDelegate loaded;
        try
        {
            loaded = load(accelerator);
        }
        catch (Exception e) when (e is not XceptionException)
        {
            var error = new KernelCompileException(name, $"{Id} ({Name})", e);
            Recreate();
            throw error;
        }
        kernels[name] = loaded;
        return loaded;
    }

    /// <summary>Launch shape for a grid-stride kernel over <paramref name="items"/> items.</summary>
    public KernelConfig GridFor(long items)
    {
        if (!UsesGpuKernels)
        {
            int groups = (int)Math.Clamp((items + CpuThreadsPerWarp - 1) / CpuThreadsPerWarp, 1,
                cores * CpuGroupsPerCore);
            return new KernelConfig(groups, CpuThreadsPerWarp);
        }
        const int groupSize = 256;
        long maxGroups = (long)accelerator.NumMultiprocessors * (accelerator.MaxNumThreadsPerMultiprocessor / groupSize) * 4;
        int g = (int)Math.Clamp((items + groupSize - 1) / groupSize, 1, Math.Max(maxGroups, 1));
        return new KernelConfig(g, groupSize);
    }

    /// <summary>
    /// Launch shape of the CPU accelerator's SIMD kernels: one thread index per core (rounded up to whole groups of
    /// two, the CPU device's warp), each index a large unit of work (a band of rows, a block of a GEMM), so ILGPU's
    /// cost per index and per group vanishes. Groups of two full threads ran Xception's forward pass 5-7% faster
    /// than one group of one thread per core (four interleaved runs each on 2 cores).
    /// </summary>
    public KernelConfig CpuWorkers => new((cores + 1) / 2, 2);

    /// <summary>Number of threads that run at once, used to decide how finely to split reductions.</summary>
    public int Parallelism => !UsesGpuKernels
        ? cores * CpuGroupsPerCore * CpuThreadsPerWarp
        : accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor;

    /// <summary>
    /// A scratch buffer of at least <paramref name="length"/> floats in slot <paramref name="slot"/>, grown
    /// when too small and otherwise reused, so ops need no allocation per call. Valid until the next request
    /// for the same slot.
    /// </summary>
    public ArrayView<float> Scratch(int slot, long length)
    {
        if (!scratch.TryGetValue(slot, out var buf) || buf.Length < length)
        {
            if (buf is not null)
            {
                accelerator.Synchronize(); // a kernel still in flight may read the old buffer
                buf.Dispose();
            }
            buf = accelerator.Allocate1D<float>(Math.Max(length, 1));
            scratch[slot] = buf;
        }
        return buf.View.SubView(0, length);
    }

    /// <summary>Waits until every launched kernel has finished.</summary>
    public void Synchronize() => accelerator.Synchronize();

    void DisposeResources()
    {
        foreach (var b in scratch.Values) b.Dispose();
        scratch.Clear();
        kernels.Clear();
        ops.Clear();
        accelerator?.Dispose();
        context?.Dispose();
    }

    public void Dispose() => DisposeResources();

    public override string ToString() => $"{Id} ({Name}{(gpuShapedCpu ? ", GPU-shaped" : "")})";
}
