namespace Xception.Gpu;

/// <summary>Kinds of device the library can run on.</summary>
public enum DeviceKind { Cpu, Cuda, OpenCL }

/// <summary>
/// A parsed device string: <c>auto</c> (CUDA, else OpenCL, else CPU), <c>cuda</c>, <c>cuda:1</c>,
/// <c>opencl:0</c>, <c>cpu</c> or <c>cpu:N</c> (several CPU accelerators may stand side by side).
/// </summary>
public readonly record struct DeviceSpec(DeviceKind? Kind, int Index)
{
    public const string Expected = "auto, cpu, cpu:N, cuda, cuda:N, opencl or opencl:N";

    public bool IsAuto => Kind is null;

    public static DeviceSpec Parse(string? text)
    {
        var s = (text ?? "").Trim().ToLowerInvariant();
        if (s is "" or "auto") return new(null, 0);
        var parts = s.Split(':');
        if (parts.Length > 2) throw Bad(text);
        DeviceKind kind = parts[0] switch
        {
            "cpu" => DeviceKind.Cpu,
            "cuda" or "gpu" => DeviceKind.Cuda,
            "opencl" or "cl" => DeviceKind.OpenCL,
            _ => throw Bad(text),
        };
        int index = 0;
        if (parts.Length == 2 && (!int.TryParse(parts[1], out index) || index < 0)) throw Bad(text);
        return new(kind, index);
    }

    static DeviceException Bad(string? text) =>
        new($"unknown device '{text}': expected {Expected}");

    public override string ToString() => Kind switch
    {
        null => "auto",
        DeviceKind.Cpu => $"cpu:{Index}",
        DeviceKind.Cuda => $"cuda:{Index}",
        _ => $"opencl:{Index}",
    };
}
