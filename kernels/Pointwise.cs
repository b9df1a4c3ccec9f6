namespace Xception.Gpu.Kernels;

using ILGPU;

/// <summary>
/// The strided half of a 1x1 convolution with stride greater than 1 (Xception's shortcuts). The product
/// itself is a GEMM (see <see cref="GemmKernels"/>); these kernels move pixels between the full input grid and
/// the subsampled one. A 1x1 window never needs 'same' padding, so sampled pixel (oy, ox) is (oy*s, ox*s).
/// </summary>
public static class PointwiseKernels
{
    /// <summary>xs[n, oy, ox, c] = x[n, oy * s, ox * s, c].</summary>
    public static void Gather(
        ArrayView<float> x,   // [N, H, W, C]
        ConvShape s,
        ArrayView<float> xs)  // [N, OH, OW, C]
    {
        int total = s.OutputPixels * s.C;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            ConvShape.Unflatten(t, s.OH, s.OW, s.C, out int n, out int oy, out int ox, out int c);
            xs[t] = x[((n * s.H + oy * s.Stride) * s.W + ox * s.Stride) * s.C + c];
        }
    }

    /// <summary>dx[n, iy, ix, c] = dxs[n, iy / s, ix / s, c] on sampled pixels, 0 elsewhere.</summary>
    public static void Scatter(
        ArrayView<float> dxs, // [N, OH, OW, C]
        ConvShape s,
        ArrayView<float> dx)  // [N, H, W, C]
    {
        int total = s.InputLength;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            ConvShape.Unflatten(t, s.H, s.W, s.C, out int n, out int iy, out int ix, out int c);
            bool sampled = iy % s.Stride == 0 && ix % s.Stride == 0 && iy / s.Stride < s.OH && ix / s.Stride < s.OW;
            dx[t] = sampled ? dxs[((n * s.OH + iy / s.Stride) * s.OW + ix / s.Stride) * s.C + c] : 0f;
        }
    }
}
