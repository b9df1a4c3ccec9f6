namespace Xception.Gpu.Kernels;

using ILGPU;

/// <summary>
/// Depthwise convolution, multiplier 1 (the spatial half of SeparableConv2D). x [N, H, W, C],
/// w [KH, KW, C], y [N, OH, OW, C] (O = C). Memory-bound: one thread per output value, channels fastest so
/// that neighbouring threads read neighbouring addresses.
/// </summary>
public static class DepthwiseKernels
{
    public static void Forward(
        ArrayView<float> x,   // [N, H, W, C]
        ArrayView<float> w,   // [KH, KW, C]
        ConvShape s,
        ArrayView<float> y)   // [N, OH, OW, C]
    {
        int total = s.OutputLength;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            ConvShape.Unflatten(t, s.OH, s.OW, s.C, out int n, out int oy, out int ox, out int c);
            float acc = 0;
            for (int ky = 0; ky < s.KH; ky++)
            {
                int iy = oy * s.Stride + ky - s.PadTop;
                if (iy < 0 || iy >= s.H) continue;
                for (int kx = 0; kx < s.KW; kx++)
                {
                    int ix = ox * s.Stride + kx - s.PadLeft;
                    if (ix < 0 || ix >= s.W) continue;
                    acc += x[((n * s.H + iy) * s.W + ix) * s.C + c] * w[(ky * s.KW + kx) * s.C + c];
                }
            }
            y[t] = acc;
        }
    }

    /// <summary>dx[n, iy, ix, c] = sum over the windows covering the pixel of dy[.., c] * w[ky, kx, c].</summary>
    public static void BackwardInput(
        ArrayView<float> dy,  // [N, OH, OW, C]
        ArrayView<float> w,   // [KH, KW, C]
        ConvShape s,
        ArrayView<float> dx)  // [N, H, W, C]
    {
        int total = s.InputLength;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            ConvShape.Unflatten(t, s.H, s.W, s.C, out int n, out int iy, out int ix, out int c);
            s.CoveringRows(iy, out int oy0, out int oy1);
            s.CoveringCols(ix, out int ox0, out int ox1);
            float acc = 0;
            for (int oy = oy0; oy <= oy1; oy++)
            {
                int ky = iy + s.PadTop - oy * s.Stride;
                for (int ox = ox0; ox <= ox1; ox++)
                {
                    int kx = ix + s.PadLeft - ox * s.Stride;
                    acc += dy[((n * s.OH + oy) * s.OW + ox) * s.C + c] * w[(ky * s.KW + kx) * s.C + c];
                }
            }
            dx[t] = acc;
        }
    }

    /// <summary>
    /// Weight gradient, first stage: partial[chunk, ky, kx, c] = sum over the chunk's output pixels of
    /// x[window pixel, c] * dy[pixel, c]; ReduceKernels.SumRows adds the chunks. Pixels are walked with counters
    /// (no division per pixel).
    /// </summary>
    public static void BackwardWeightPartials(
        ArrayView<float> x,       // [N, H, W, C]
        ArrayView<float> dy,      // [N, OH, OW, C]
        ConvShape s, int chunkPixels,
        ArrayView<float> partial) // [chunks, KH, KW, C]
    {
        int wlen = s.KH * s.KW * s.C;
        int pixels = s.OutputPixels;
        int chunks = (pixels + chunkPixels - 1) / chunkPixels;
        int total = chunks * wlen;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            int ch = t / wlen, wi = t - ch * wlen;
            int c = wi % s.C, tap = wi / s.C;
            int kx = tap % s.KW, ky = tap / s.KW;
            int p0 = ch * chunkPixels;
            int p1 = p0 + chunkPixels < pixels ? p0 + chunkPixels : pixels;
            int ox = p0 % s.OW, oy = p0 / s.OW % s.OH, n = p0 / (s.OW * s.OH);
            float acc = 0;
            for (int p = p0; p < p1; p++)
            {
                int iy = oy * s.Stride + ky - s.PadTop, ix = ox * s.Stride + kx - s.PadLeft;
                if (iy >= 0 && iy < s.H && ix >= 0 && ix < s.W)
                    acc += x[((n * s.H + iy) * s.W + ix) * s.C + c] * dy[p * s.C + c];
                if (++ox == s.OW) { ox = 0; if (++oy == s.OH) { oy = 0; n++; } }
            }
            partial[t] = acc;
        }
    }
}
