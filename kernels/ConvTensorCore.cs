namespace Xception.Gpu.Kernels;

using ILGPU;

/// <summary>
/// The regular (ungrouped) convolution on the tensor cores as implicit GEMM: each pass is a product whose operands
/// are read from the tensors where they lie (<see cref="TensorCoreTile"/>), patches gathered as the tile is staged,
/// so no column matrix is built. With x [N, H, W, C], w [KH, KW, C, O], y [N, OH, OW, O] and P = N * OH * OW:
/// <list type="bullet">
/// <item>forward: y [P, O] = patches [P, KH KW C] * w [KH KW C, O];</item>
/// <item>input gradient: dx [N H W, C] = dy-patches [N H W, KH KW O] * w^T [KH KW O, C], where the dy-patch of
/// input pixel (iy, ix) at tap (ky, kx) is dy at ((iy + PadTop - ky) / Stride, (ix + PadLeft - kx) / Stride) when
/// that divides and lies inside, else zero (the covering windows of <see cref="ConvShape.CoveringRows"/>);</item>
/// <item>weight gradient: dw [KH KW C, O] = patches^T [KH KW C, P] * dy [P, O], split over P.</item>
/// </list>
/// Operands are rounded to TF32 or bf16 as they are staged and products accumulate in fp32, as for the GEMM.
/// </summary>
[TensorCoreKernels]
public static class ConvTensorCoreKernels
{
    public static void Forward(
        ArrayView<float> x,   // [N, H, W, C]
        ArrayView<float> w,   // [KH, KW, C, O]
        ConvShape s, int format,
        ArrayView<float> y)   // [N, OH, OW, O]
    {
        int k = s.KH * s.KW * s.C;
        TensorCoreTile.Run(new Patches(x, s), new StridedOperand(w, 1, s.O), s.OutputPixels, s.O, k, k, 0f, format, y);
    }

    public static void BackwardInput(
        ArrayView<float> dy,  // [N, OH, OW, O]
        ArrayView<float> w,   // [KH, KW, C, O]
        ConvShape s, int format,
        ArrayView<float> dx)  // [N, H, W, C]
    {
        int k = s.KH * s.KW * s.O;
        TensorCoreTile.Run(new GradientPatches(dy, s), new TransposedWeights(w, s), s.N * s.H * s.W, s.C, k, k, 0f, format, dx);
    }

    /// <summary>dw, or with <paramref name="kChunk"/> &lt; P the partial sums of each chunk of pixels ([chunks, KH, KW, C, O]), which the op adds.</summary>
    public static void BackwardWeight(
        ArrayView<float> x,   // [N, H, W, C]
        ArrayView<float> dy,  // [N, OH, OW, O]
        ConvShape s, int kChunk, int format,
        ArrayView<float> dw)  // [KH, KW, C, O] or [chunks, KH, KW, C, O]
        => TensorCoreTile.Run(new TransposedPatches(x, s), new StridedOperand(dy, 1, s.O), s.KH * s.KW * s.C, s.O, s.OutputPixels, kChunk, 0f, format, dw);

    /// <summary>The input value under tap (ky, kx) of output pixel p, zero in the padding.</summary>
    static float Tap(ArrayView<float> x, ConvShape s, int p, int tap, int c)
    {
        int ox = p % s.OW, r = p / s.OW;
        int oy = r % s.OH, n = r / s.OH;
        int kx = tap % s.KW, ky = tap / s.KW;
        int iy = oy * s.Stride + ky - s.PadTop, ix = ox * s.Stride + kx - s.PadLeft;
        return iy >= 0 && iy < s.H && ix >= 0 && ix < s.W ? x[((n * s.H + iy) * s.W + ix) * s.C + c] : 0f;
    }

    /// <summary>im2col's matrix [P, KH KW C], read in place: (pixel, (tap, channel)).</summary>
    struct Patches(ArrayView<float> x, ConvShape s) : ITileOperand
    {
        readonly ArrayView<float> x = x;
        readonly ConvShape s = s;
        public readonly float Load(int outer, int k) => Tap(x, s, outer, k / s.C, k % s.C);
        public readonly bool KContiguous => true;
    }

    /// <summary>im2col's matrix transposed [KH KW C, P]: ((tap, channel), pixel); channels are adjacent.</summary>
    struct TransposedPatches(ArrayView<float> x, ConvShape s) : ITileOperand
    {
        readonly ArrayView<float> x = x;
        readonly ConvShape s = s;
        public readonly float Load(int outer, int k) => Tap(x, s, k, outer / s.C, outer % s.C);
        public readonly bool KContiguous => false;
    }

    /// <summary>The input gradient's patches [N H W, KH KW O]: (input pixel, (tap, output channel)).</summary>
    struct GradientPatches(ArrayView<float> dy, ConvShape s) : ITileOperand
    {
        readonly ArrayView<float> dy = dy;
        readonly ConvShape s = s;

        public readonly float Load(int outer, int k)
        {
            int o = k % s.O, tap = k / s.O;
            int kx = tap % s.KW, ky = tap / s.KW;
            int ix = outer % s.W, r = outer / s.W;
            int iy = r % s.H, n = r / s.H;
            int ty = iy + s.PadTop - ky, tx = ix + s.PadLeft - kx;
            if (ty < 0 || tx < 0) return 0f;
            int oy = ty / s.Stride, ox = tx / s.Stride;
            if (oy * s.Stride != ty || ox * s.Stride != tx || oy >= s.OH || ox >= s.OW) return 0f;
            return dy[((n * s.OH + oy) * s.OW + ox) * s.O + o];
        }

        public readonly bool KContiguous => true;
    }

    /// <summary>The weights as [KH KW O, C]: ((tap, output channel), input channel) of w [KH, KW, C, O].</summary>
    struct TransposedWeights(ArrayView<float> w, ConvShape s) : ITileOperand
    {
        readonly ArrayView<float> w = w;
        readonly ConvShape s = s;
        public readonly float Load(int outer, int k) => w[((k / s.O) * s.C + outer) * s.O + k % s.O];
        public readonly bool KContiguous => true;
    }
}
