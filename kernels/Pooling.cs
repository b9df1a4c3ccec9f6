namespace Xception.Gpu.Kernels;

using ILGPU;

/// <summary>
/// Max pooling over KH x KW windows (Xception: 3x3, stride 2, 'same') and global average pooling.
/// x [N, H, W, C], y [N, OH, OW, C]. Padded positions never win a max (TensorFlow pads with -infinity).
/// </summary>
public static class MaxPoolKernels
{
    /// <summary>
    /// y = window maximum; argmax (when saveArgmax is 1) records the flat input index of the first maximum in
    /// row-major window order, which is where the backward pass sends the gradient.
    /// </summary>
    public static void Forward(
        ArrayView<float> x,      // [N, H, W, C]
        ConvShape s, int saveArgmax,
        ArrayView<float> y,      // [N, OH, OW, C]
        ArrayView<int> argmax)   // [N, OH, OW, C], or empty when saveArgmax is 0
    {
        int total = s.OutputLength;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            ConvShape.Unflatten(t, s.OH, s.OW, s.C, out int n, out int oy, out int ox, out int c);
            float best = float.NegativeInfinity;
            int at = -1;
            for (int ky = 0; ky < s.KH; ky++)
            {
                int iy = oy * s.Stride + ky - s.PadTop;
                if (iy < 0 || iy >= s.H) continue;
                for (int kx = 0; kx < s.KW; kx++)
                {
                    int ix = ox * s.Stride + kx - s.PadLeft;
                    if (ix < 0 || ix >= s.W) continue;
                    int i = ((n * s.H + iy) * s.W + ix) * s.C + c;
                    float v = x[i];
                    if (at < 0 || v > best) { best = v; at = i; }
                }
            }
            y[t] = best;
            if (saveArgmax != 0) argmax[t] = at;
        }
    }

    /// <summary>dx[i] = sum of dy over the windows whose recorded maximum is input i (a gather: no atomics).</summary>
    public static void Backward(
        ArrayView<float> dy,     // [N, OH, OW, C]
        ArrayView<int> argmax,   // [N, OH, OW, C]
        ConvShape s,
        ArrayView<float> dx)     // [N, H, W, C]
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
                for (int ox = ox0; ox <= ox1; ox++)
                {
                    int o = ((n * s.OH + oy) * s.OW + ox) * s.C + c;
                    if (argmax[o] == t) acc += dy[o];
                }
            dx[t] = acc;
        }
    }
}

/// <summary>Global average pooling: x [N, H, W, C] to y [N, C].</summary>
public static class GlobalAvgPoolKernels
{
    public static void Forward(
        ArrayView<float> x,   // [N, H, W, C]
        int n, int pixels, int c,
        ArrayView<float> y)   // [N, C]
    {
        int total = n * c;
        float scale = 1f / pixels;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            int ch = t % c, b = t / c;
            float acc = 0;
            for (int p = 0; p < pixels; p++) acc += x[(b * pixels + p) * c + ch];
            y[t] = acc * scale;
        }
    }

    /// <summary>dx[n, h, w, c] = dy[n, c] / (H * W).</summary>
    public static void Backward(
        ArrayView<float> dy,  // [N, C]
        int n, int pixels, int c,
        ArrayView<float> dx)  // [N, H, W, C]
    {
        int total = n * pixels * c;
        float scale = 1f / pixels;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            int ch = t % c, b = t / (pixels * c);
            dx[t] = dy[b * c + ch] * scale;
        }
    }
}
