namespace Xception.Gpu.Kernels;

/// <summary>
/// Geometry of a sliding-window op (convolution, depthwise, pooling), passed to kernels by value.
/// Input [N, H, W, C], output [N, OH, OW, O]; window KH x KW, one stride for both axes, and the leading
/// pads of TensorFlow's 'same' (0 for 'valid'); trailing pads are implied by OH and OW.
/// Groups (regular convolution only) splits C and O into that many segments, segment g of the output
/// seeing only segment g of the input: 1 is a regular convolution, C is depthwise (see Depthwise).
/// </summary>
public struct ConvShape
{
    public int N, H, W, C, OH, OW, O, KH, KW, Stride, PadTop, PadLeft, Groups;

    public readonly int InputLength => N * H * W * C;
    public readonly int OutputLength => N * OH * OW * O;
    /// <summary>Output pixels N * OH * OW: the rows over which weight gradients reduce.</summary>
    public readonly int OutputPixels => N * OH * OW;
    /// <summary>Input channels per group: the third dimension of a grouped kernel [KH, KW, C / G, O].</summary>
    public readonly int GroupInputs => C / Groups;
    /// <summary>Output channels per group.</summary>
    public readonly int GroupOutputs => O / Groups;
}
