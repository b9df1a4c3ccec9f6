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
    /// <summary>Splits a flat index of an [N, rows, cols, channels] tensor into its coordinates.</summary>
    public static void Unflatten(int t, int rows, int cols, int channels, out int n, out int y, out int x, out int c)
    {
        c = t % channels;
        int p = t / channels;
        x = p % cols;
        p /= cols;
        y = p % rows;
        n = p / rows;
    }

    /// <summary>
    /// The output rows whose window covers input row <paramref name="iy"/>: first..last (empty when
    /// first &gt; last); for output row oy the tap is ky = iy + PadTop - oy * Stride. The backward passes
    /// gather over these instead of testing every tap for divisibility by the stride.
    /// </summary>
    public readonly void CoveringRows(int iy, out int first, out int last) => Covering(iy + PadTop, KH, OH, out first, out last);

    /// <summary>The output columns whose window covers input column <paramref name="ix"/> (see <see cref="CoveringRows"/>).</summary>
    public readonly void CoveringCols(int ix, out int first, out int last) => Covering(ix + PadLeft, KW, OW, out first, out last);

    readonly void Covering(int padded, int k, int outSize, out int first, out int last)
    {
        int lowest = padded - k + 1;
        first = lowest <= 0 ? 0 : (lowest + Stride - 1) / Stride;
        last = padded / Stride;
        if (last > outSize - 1) last = outSize - 1;
    }

    /// <summary>Input channels per group: the third dimension of a grouped kernel [KH, KW, C / G, O].</summary>
    public readonly int GroupInputs => C / Groups;
    /// <summary>Output channels per group.</summary>
    public readonly int GroupOutputs => O / Groups;
}
