namespace Xception.Gpu.Runtime;

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

    /// <summary>
    /// A list of devices for data parallelism: <c>cpu:0,cpu:1</c>, <c>cuda:0,cuda:1</c>, or a kind and a count
    /// such as <c>cuda*2</c> or <c>cpu*3</c> (indices <paramref name="firstIndex"/> on: under MPI a process
    /// takes the devices after those of the processes before it on its machine).
    /// </summary>
    /// <exception cref="DeviceListException">the text is not such a list</exception>
    public static IReadOnlyList<DeviceSpec> ParseList(string? text, int firstIndex = 0)
    {
        var s = (text ?? "").Trim();
        const string expected = "a list such as cpu:0,cpu:1 or cuda:0,cuda:1, or a count such as cuda*2 or cpu*3";
        if (s.Length == 0) throw new DeviceListException(text, $"expected {expected}");
        if (s.Contains('*'))
        {
            var parts = s.Split('*');
            if (parts.Length != 2 || !int.TryParse(parts[1], out int n) || n < 1 || n > 64)
                throw new DeviceListException(text, $"expected {expected} (a count of 1 to 64)");
            var kind = Parse(parts[0]);
            if (kind.IsAuto || parts[0].Contains(':'))
                throw new DeviceListException(text, "the count form takes a kind (cpu, cuda, opencl), e.g. cuda*2");
            return Enumerable.Range(firstIndex, n).Select(i => kind with { Index = i }).ToList();
        }
        var list = s.Split(',').Select(x => Parse(x)).ToList();
        if (list.Any(d => d.IsAuto)) throw new DeviceListException(text, $"name each device; expected {expected}");
        var twice = list.Where(d => d.Kind != DeviceKind.Cpu).GroupBy(d => d).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null) throw new DeviceListException(text, $"it names {twice.Key} twice: one replica per GPU");
        return list;
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
