namespace Xception.Gpu.Kernels;

/// <summary>
/// Geometry of a sliding-window op (convolution, depthwise, pooling), passed to kernels by value.
/// Input [N, H, W, C], output [N, OH, OW, O]; window KH x KW, one stride for both axes, and the leading
/// pads of TensorFlow's 'same' (0 for 'valid'); trailing pads are implied by OH and OW.
/// </summary>
public struct ConvShape
{
    public int N, H, W, C, OH, OW, O, KH, KW, Stride, PadTop, PadLeft;

    public readonly int InputLength => N * H * W * C;
    public readonly int OutputLength => N * OH * OW * O;
    /// <summary>Output pixels N * OH * OW: the rows over which weight gradients reduce.</summary>
    public readonly int OutputPixels => N * OH * OW;
}
