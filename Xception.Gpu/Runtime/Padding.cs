namespace Xception.Gpu.Runtime;

/// <summary>Keras padding modes.</summary>
public enum Padding { Valid, Same }

/// <summary>Output size and leading pad of one spatial axis, as TensorFlow computes them.</summary>
public readonly record struct AxisGeometry(int In, int Out, int PadBefore, int Kernel, int Stride)
{
    /// <summary>
    /// 'valid': out = floor((in - k) / s) + 1, no pad. 'same' (TensorFlow): out = ceil(in / s),
    /// pad_total = max((out - 1) * s + k - in, 0), pad_before = floor(pad_total / 2); the odd pixel goes after.
    /// </summary>
    public static AxisGeometry Of(string op, int input, int kernel, int stride, Padding padding)
    {
        if (kernel < 1 || stride < 1)
            throw new OpArgumentException(op, $"kernel {kernel} and stride {stride} must be at least 1");
        if (padding == Padding.Valid)
        {
            if (input < kernel)
                throw new ShapeException(op, $"'valid' padding needs an input of at least {kernel} pixels, got {input}");
            return new(input, (input - kernel) / stride + 1, 0, kernel, stride);
        }
        int output = (input + stride - 1) / stride;
        int total = Math.Max((output - 1) * stride + kernel - input, 0);
        return new(input, output, total / 2, kernel, stride);
    }
}
