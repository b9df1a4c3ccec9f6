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
