namespace Xception.Gpu.Kernels;

using ILGPU;

/// <summary>
/// Regular (optionally grouped) convolution, no bias: Xception's block1 convolutions and the grouped
/// spatial convolutions of the paper's segment spectrum. x [N, H, W, C], w [KH, KW, C / G, O],
/// y [N, OH, OW, O]; output channel o belongs to group o / (O / G) and reads input channels
/// g * C / G ... (g + 1) * C / G - 1. Each forward thread computes four output channels of one pixel
/// (within one group), so every input value it loads serves four multiply-adds.
/// </summary>
public static class Conv2DKernels
{
    public static void Forward(
        ArrayView<float> x,   // [N, H, W, C]
        ArrayView<float> w,   // [KH, KW, C / G, O]
        ConvShape s,
        ArrayView<float> y)   // [N, OH, OW, O]
    {
        int cg = s.GroupInputs, og = s.GroupOutputs;
        int quads = (og + 3) / 4;            // 4-channel blocks per group
        int perPixel = s.Groups * quads;
        int total = s.OutputPixels * perPixel;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            int q = t % perPixel, p = t / perPixel;
            int g = q / quads;
            int o0 = g * og + (q - g * quads) * 4;
            int valid = g * og + og - o0;    // outputs left in this group
            int ox = p % s.OW; p /= s.OW;
            int oy = p % s.OH; int n = p / s.OH;
            int c0 = g * cg;
            bool full = valid >= 4;
            float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (int ky = 0; ky < s.KH; ky++)
            {
                int iy = oy * s.Stride + ky - s.PadTop;
                if (iy < 0 || iy >= s.H) continue;
                for (int kx = 0; kx < s.KW; kx++)
                {
                    int ix = ox * s.Stride + kx - s.PadLeft;
                    if (ix < 0 || ix >= s.W) continue;
                    int xb = ((n * s.H + iy) * s.W + ix) * s.C + c0;
                    int wb = (ky * s.KW + kx) * cg * s.O + o0;
                    for (int c = 0; c < cg; c++)
                    {
                        float xv = x[xb + c];
                        int wo = wb + c * s.O;
                        if (full)
                        {
                            a0 += xv * w[wo]; a1 += xv * w[wo + 1]; a2 += xv * w[wo + 2]; a3 += xv * w[wo + 3];
                        }
                        else
                        {
                            a0 += xv * w[wo];
                            if (valid > 1) a1 += xv * w[wo + 1];
                            if (valid > 2) a2 += xv * w[wo + 2];
                        }
                    }
                }
            }
            int yb = ((n * s.OH + oy) * s.OW + ox) * s.O + o0;
            y[yb] = a0;
            if (valid > 1) y[yb + 1] = a1;
            if (valid > 2) y[yb + 2] = a2;
            if (valid > 3) y[yb + 3] = a3;
        }
    }

    /// <summary>dx[n, iy, ix, c] = sum over the windows covering the pixel, and the group's outputs, of dy * w.</summary>
    public static void BackwardInput(
        ArrayView<float> dy,  // [N, OH, OW, O]
        ArrayView<float> w,   // [KH, KW, C / G, O]
        ConvShape s,
        ArrayView<float> dx)  // [N, H, W, C]
    {
        int cg = s.GroupInputs, og = s.GroupOutputs;
        int total = s.InputLength;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            ConvShape.Unflatten(t, s.H, s.W, s.C, out int n, out int iy, out int ix, out int c);
            int g = c / cg, o0 = g * og;
            s.CoveringRows(iy, out int oy0, out int oy1);
            s.CoveringCols(ix, out int ox0, out int ox1);
            float acc = 0;
            for (int oy = oy0; oy <= oy1; oy++)
            {
                int ky = iy + s.PadTop - oy * s.Stride;
                for (int ox = ox0; ox <= ox1; ox++)
                {
                    int kx = ix + s.PadLeft - ox * s.Stride;
                    int db = ((n * s.OH + oy) * s.OW + ox) * s.O + o0;
                    int wb = ((ky * s.KW + kx) * cg + c - g * cg) * s.O + o0;
                    for (int o = 0; o < og; o++) acc += dy[db + o] * w[wb + o];
                }
            }
            dx[t] = acc;
        }
    }

    /// <summary>
    /// Weight gradient, first stage: partial[chunk, ky, kx, ci, o] = sum over the output pixels of the chunk
    /// of x[window pixel, group(o) * C / G + ci] * dy[pixel, o]; ReduceKernels.SumRows adds the chunks. Each thread
    /// owns four output channels of one (tap, input channel) and walks the chunk's pixels with counters
    /// (no division per pixel), so each x value it loads serves four multiply-adds.
    /// </summary>
    public static void BackwardWeightPartials(
        ArrayView<float> x,       // [N, H, W, C]
        ArrayView<float> dy,      // [N, OH, OW, O]
        ConvShape s, int chunkPixels,
        ArrayView<float> partial) // [chunks, KH, KW, C / G, O]
    {
        int cg = s.GroupInputs, og = s.GroupOutputs;
        int quads = (og + 3) / 4;
        int perTap = s.Groups * quads;
        int wlen = s.KH * s.KW * cg * s.O;
        int pixels = s.OutputPixels;
        int chunks = (pixels + chunkPixels - 1) / chunkPixels;
        int total = chunks * s.KH * s.KW * cg * perTap;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            int q = t % perTap, r = t / perTap;
            int ci = r % cg; r /= cg;
            int kx = r % s.KW; r /= s.KW;
            int ky = r % s.KH; int ch = r / s.KH;
            int g = q / quads;
            int o0 = g * og + (q - g * quads) * 4;
            int valid = g * og + og - o0;
            int c = g * cg + ci;
            int p0 = ch * chunkPixels;
            int p1 = p0 + chunkPixels < pixels ? p0 + chunkPixels : pixels;
            int ox = p0 % s.OW, oy = p0 / s.OW % s.OH, n = p0 / (s.OW * s.OH);
            float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (int p = p0; p < p1; p++)
            {
                int iy = oy * s.Stride + ky - s.PadTop, ix = ox * s.Stride + kx - s.PadLeft;
                if (iy >= 0 && iy < s.H && ix >= 0 && ix < s.W)
                {
                    float xv = x[((n * s.H + iy) * s.W + ix) * s.C + c];
                    int db = p * s.O + o0;
                    a0 += xv * dy[db];
                    if (valid > 1) a1 += xv * dy[db + 1];
                    if (valid > 2) a2 += xv * dy[db + 2];
                    if (valid > 3) a3 += xv * dy[db + 3];
                }
                if (++ox == s.OW) { ox = 0; if (++oy == s.OH) { oy = 0; n++; } }
            }
            int pb = ch * wlen + ((ky * s.KW + kx) * cg + ci) * s.O + o0;
            partial[pb] = a0;
            if (valid > 1) partial[pb + 1] = a1;
            if (valid > 2) partial[pb + 2] = a2;
            if (valid > 3) partial[pb + 3] = a3;
        }
    }
}
