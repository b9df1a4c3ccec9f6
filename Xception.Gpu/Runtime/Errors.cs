namespace Xception.Gpu.Runtime;

/// <summary>Base of every error this library throws on purpose; its message is one line meant for users.</summary>
public class XceptionException : Exception
{
    public XceptionException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>A device string that names no usable device, or a device that failed.</summary>
public class DeviceException : XceptionException
{
    public DeviceException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// A device allocation failed for want of memory. Its own type, so that a caller (the trainer) can react to
/// it (say which batch would fit) without reading the message.
/// </summary>
public sealed class DeviceOutOfMemoryException : DeviceException
{
    /// <summary>The device that ran out.</summary>
    public Device Device { get; }

    /// <summary>The size of the allocation that failed.</summary>
    public long Bytes { get; }

    public DeviceOutOfMemoryException(Device device, long bytes, string message, Exception? inner = null) : base(message, inner)
    {
        Device = device;
        Bytes = bytes;
    }
}

/// <summary>A tensor whose shape does not fit the op; the message names the op and both shapes.</summary>
public sealed class ShapeException : XceptionException
{
    public string Op { get; }
    public ShapeException(string op, string message) : base($"{op}: {message}") => Op = op;
}

/// <summary>An argument out of range for an op (a stride of 0, a dropout rate of 1, ...).</summary>
public sealed class OpArgumentException : XceptionException
{
    public OpArgumentException(string op, string message) : base($"{op}: {message}") { }
}

/// <summary>
/// A kernel that ILGPU could not compile for the device. The device's context is recreated afterwards,
/// because ILGPU leaves a context unusable after a failed compile; tensors made before are then invalid.
/// </summary>
public sealed class KernelCompileException : XceptionException
{
    public string Kernel { get; }
    public KernelCompileException(string kernel, string device, Exception inner)
        : base($"kernel '{kernel}' failed to compile for {device}: {FirstLine(inner)}", inner) => Kernel = kernel;

    /// <summary>ILGPU wraps the cause (such as "Float64 (double) type is not supported") in generic errors.</summary>
    static string FirstLine(Exception e)
    {
        var root = e.GetBaseException();
        var m = root == e ? e.Message : $"{e.Message.TrimEnd('.')}: {root.Message}";
        int nl = m.IndexOf('\n');
        return nl < 0 ? m : m[..nl].TrimEnd();
    }
}

/// <summary>
/// A device list (for data parallelism) that cannot be parsed. It keeps the list and the problem apart, so
/// that a caller can name the list its own way (the CLI: "--devices 'cuda*0': ...").
/// </summary>
public sealed class DeviceListException : DeviceException
{
    /// <summary>The list as given (null or empty when none was).</summary>
    public string? Text { get; }

    /// <summary>What is wrong with it, e.g. "expected a list such as cpu:0,cpu:1 ...".</summary>
    public string Problem { get; }

    public DeviceListException(string? text, string problem) : base(Describe("device list", text, problem))
    {
        Text = text;
        Problem = problem;
    }

    /// <summary>The message with the list called <paramref name="subject"/>: "SUBJECT 'TEXT': PROBLEM", or "SUBJECT is empty: PROBLEM".</summary>
    public string Describe(string subject) => Describe(subject, Text, Problem);

    static string Describe(string subject, string? text, string problem) =>
        string.IsNullOrWhiteSpace(text) ? $"{subject} is empty: {problem}" : $"{subject} '{text}': {problem}";
}
