namespace Xception.Gpu.Cli;

static class DevicesCommand
{
    public static CliCommand Definition => new("devices", "list the accelerators this machine has (CUDA, OpenCL, CPU)", Run, """
        Lists every accelerator ILGPU finds: device string, name, memory, warp size, multiprocessors.
        A device marked 'not usable' cannot run ILGPU kernels; the note says why. OpenCL devices that report
        no generic address space (Mesa rusticl) run as OpenCL C 2.0 when a probe kernel passes on them; 'auto'
        skips CPU-type OpenCL devices (llvmpipe): use --device opencl:N to run on one.
        """);

    static int Run(Args a)
    {
        var list = Device.List();
        Console.WriteLine($"{"device",-10} {"name",-50} {"memory",10} {"warp",5} {"SMs",5}  note");
        foreach (var d in list)
            Console.WriteLine($"{d.Id,-10} {Trim(d.Name, 50),-50} {d.MemoryBytes / (double)(1L << 30),7:F1} GiB {d.WarpSize,5} {d.Multiprocessors,5}  " +
                              (d.Usable ? d.Note : "not usable: " + d.Note));
        if (!list.Any(d => d.Kind == DeviceKind.Cuda)) Console.WriteLine("no CUDA device found (no NVIDIA driver or GPU)");
        if (!list.Any(d => d.Kind == DeviceKind.OpenCL))
            Console.WriteLine("no OpenCL device found" +
                // Mesa's rusticl is installed but shows no device until told which drivers to expose.
                (File.Exists("/etc/OpenCL/vendors/rusticl.icd") && Environment.GetEnvironmentVariable("RUSTICL_ENABLE") is null
                    ? " (Mesa rusticl is installed: set RUSTICL_ENABLE, e.g. RUSTICL_ENABLE=radeonsi or llvmpipe, to expose its devices)" : ""));
        Console.WriteLine($"'auto' picks {Pick(list)}");
        return 0;
    }

    static string Pick(IReadOnlyList<DeviceInfo> list) =>
        (list.FirstOrDefault(d => d.Usable && d.Kind == DeviceKind.Cuda)
         ?? list.FirstOrDefault(d => d.Usable && d.AutoPicks && d.Kind == DeviceKind.OpenCL) ?? list[0]).Id;

    static string Trim(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
