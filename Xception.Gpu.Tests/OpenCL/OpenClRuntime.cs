using System.Runtime.InteropServices;
using System.Text;

namespace Xception.Gpu.Tests.OpenCL;

/// <summary>
/// Just enough of the OpenCL API (through the ICD loader libOpenCL.so.1) to compile OpenCL C for a device:
/// the project's kernels have no OpenCL 2.0 device to run on here, so the test compiles the code ILGPU
/// generates for them with Mesa's rusticl instead.
/// </summary>
internal sealed class OpenClRuntime : IDisposable
{
    const string Lib = "libOpenCL.so.1";
    const uint PlatformName = 0x0902, DeviceName = 0x102B, DeviceVersion = 0x102F, BuildLog = 0x1183;
    const ulong DeviceTypeAll = 0xFFFFFFFF;

    [DllImport(Lib)] static extern int clGetPlatformIDs(uint n, IntPtr[]? platforms, out uint count);
    [DllImport(Lib)] static extern int clGetPlatformInfo(IntPtr platform, uint param, UIntPtr size, byte[]? value, out UIntPtr ret);
    [DllImport(Lib)] static extern int clGetDeviceIDs(IntPtr platform, ulong type, uint n, IntPtr[]? devices, out uint count);
    [DllImport(Lib)] static extern int clGetDeviceInfo(IntPtr device, uint param, UIntPtr size, byte[]? value, out UIntPtr ret);
    [DllImport(Lib)] static extern IntPtr clCreateContext(IntPtr props, uint n, IntPtr[] devices, IntPtr notify, IntPtr user, out int err);
    [DllImport(Lib)] static extern IntPtr clCreateProgramWithSource(IntPtr context, uint count, string[] sources, IntPtr lengths, out int err);
    [DllImport(Lib)] static extern int clBuildProgram(IntPtr program, uint n, IntPtr[] devices, string options, IntPtr notify, IntPtr user);
    [DllImport(Lib)] static extern int clGetProgramBuildInfo(IntPtr program, IntPtr device, uint param, UIntPtr size, byte[]? value, out UIntPtr ret);
    [DllImport(Lib)] static extern int clReleaseProgram(IntPtr program);
    [DllImport(Lib)] static extern int clReleaseContext(IntPtr context);
    [DllImport("libc", EntryPoint = "setenv")] static extern int SetEnv(string name, string value, int overwrite);

    /// <summary>
    /// rusticl exposes llvmpipe only when RUSTICL_ENABLE asks for it, and the ICD loader reads the native
    /// environment once, when any code (ILGPU's device listing too) first touches OpenCL; so this runs when
    /// the test assembly loads. Environment.SetEnvironmentVariable would not reach the native environment.
    /// </summary>
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void EnableRusticl()
    {
        if (OperatingSystem.IsLinux()) SetEnv("RUSTICL_ENABLE", "llvmpipe", 0);
    }

    readonly IntPtr context, device;
    public string Description { get; }

    OpenClRuntime(IntPtr context, IntPtr device, string description)
    {
        this.context = context;
        this.device = device;
        Description = description;
    }

    /// <summary>
    /// Opens the first device of the rusticl platform (else of any platform), or returns null with the
    /// reason when this machine has no OpenCL runtime or device.
    /// </summary>
    public static OpenClRuntime? TryOpen(out string reason)
    {
        try
        {
            if (clGetPlatformIDs(0, null, out uint n) != 0 || n == 0) { reason = "no OpenCL platform installed"; return null; }
            var platforms = new IntPtr[n];
            clGetPlatformIDs(n, platforms, out _);
            foreach (var p in platforms.OrderBy(p => PlatformString(p) == "rusticl" ? 0 : 1))
            {
                if (clGetDeviceIDs(p, DeviceTypeAll, 0, null, out uint nd) != 0 || nd == 0) continue;
                var devices = new IntPtr[nd];
                clGetDeviceIDs(p, DeviceTypeAll, nd, devices, out _);
                var ctx = clCreateContext(IntPtr.Zero, 1, [devices[0]], IntPtr.Zero, IntPtr.Zero, out int err);
                if (err != 0) continue;
                reason = "";
                return new OpenClRuntime(ctx, devices[0],
                    $"{PlatformString(p)}: {DeviceString(devices[0], DeviceName)} ({DeviceString(devices[0], DeviceVersion)})");
            }
            reason = "no OpenCL device found (install mesa-opencl-icd for rusticl's llvmpipe)";
            return null;
        }
        catch (DllNotFoundException)
        {
            reason = "no OpenCL ICD loader (libOpenCL.so.1; Debian package ocl-icd-libopencl1)";
            return null;
        }
    }

    /// <summary>Compiles OpenCL C; returns null on success, else the build log.</summary>
    public string? Build(string source, string options)
    {
        var program = clCreateProgramWithSource(context, 1, [source], IntPtr.Zero, out int err);
        if (err != 0) return $"clCreateProgramWithSource failed with {err}";
        try
        {
            int status = clBuildProgram(program, 1, [device], options, IntPtr.Zero, IntPtr.Zero);
            if (status == 0) return null;
            clGetProgramBuildInfo(program, device, BuildLog, UIntPtr.Zero, null, out var size);
            var log = new byte[(int)size];
            clGetProgramBuildInfo(program, device, BuildLog, size, log, out _);
            return $"clBuildProgram returned {status}: {Encoding.UTF8.GetString(log).TrimEnd('\0')}";
        }
        finally { clReleaseProgram(program); }
    }

    static string PlatformString(IntPtr p)
    {
        clGetPlatformInfo(p, PlatformName, UIntPtr.Zero, null, out var size);
        var b = new byte[(int)size];
        clGetPlatformInfo(p, PlatformName, size, b, out _);
        return Encoding.UTF8.GetString(b).TrimEnd('\0');
    }

    static string DeviceString(IntPtr d, uint param)
    {
        clGetDeviceInfo(d, param, UIntPtr.Zero, null, out var size);
        var b = new byte[(int)size];
        clGetDeviceInfo(d, param, size, b, out _);
        return Encoding.UTF8.GetString(b).TrimEnd('\0');
    }

    public void Dispose() => clReleaseContext(context);
}
