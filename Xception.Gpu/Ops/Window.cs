using Xception.Gpu.Kernels;

namespace Xception.Gpu.Ops;

/// <summary>Builds the <see cref="ConvShape"/> of a sliding-window op from an NHWC input shape.</summary>
public static class Window
{
    public static ConvShape Of(string op, Shape x, int kernel, int stride, Padding padding, int outChannels)
    {
        if (x.Rank != 4) throw new ShapeException(op, $"input must be NHWC (rank 4), got shape {x}");
        var gy = AxisGeometry.Of(op, x[1], kernel, stride, padding);
        var gx = AxisGeometry.Of(op, x[2], kernel, stride, padding);
        return new ConvShape
        {
            N = x[0], H = x[1], W = x[2], C = x[3], OH = gy.Out, OW = gx.Out, O = outChannels,
            KH = kernel, KW = kernel, Stride = stride, PadTop = gy.PadBefore, PadLeft = gx.PadBefore, Groups = 1,
        };
    }

    public static int[] OutputShape(this ConvShape s) => [s.N, s.OH, s.OW, s.O];
    public static int[] InputShape(this ConvShape s) => [s.N, s.H, s.W, s.C];

    /// <summary>Input pixel (iy, ix) seen by output (oy, ox) through tap (ky, kx), or false when padded.</summary>
    public static bool Tap(this ConvShape s, int oy, int ox, int ky, int kx, out int iy, out int ix)
    {
        iy = oy * s.Stride + ky - s.PadTop;
        ix = ox * s.Stride + kx - s.PadLeft;
        return iy >= 0 && iy < s.H && ix >= 0 && ix < s.W;
    }
}
