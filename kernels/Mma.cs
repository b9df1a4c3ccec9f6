namespace Xception.Gpu.Kernels;

using ILGPU;
using ILGPU.Runtime.Cuda;

/// <summary>
/// The number formats the tensor cores multiply, as roundings of fp32 values that stay fp32 (the low mantissa bits
/// zero): what <c>cvt.rna.tf32.f32</c> and <c>cvt.rn.bf16x2.f32</c> compute on a GPU, written with integer operations
/// so that every backend gives the same bits. A product of two rounded values is exact in fp32 (at most 22
/// significant bits for TF32, 16 for bf16), which is what makes the emulated <see cref="Mma"/> exact.
/// </summary>
public static class Rounding
{
    /// <summary>
    /// TF32 (8 exponent bits, 10 mantissa bits): round to nearest, ties away from zero (PTX's <c>.rna</c>); NaN and
    /// infinities pass unchanged, and a value past TF32's largest rounds to infinity.
    /// </summary>
    public static float Tf32(float x)
    {
        uint bits = Interop.FloatAsInt(x);
        if ((bits & 0x7F800000u) == 0x7F800000u) return x;
        // Adding half of the dropped unit to the magnitude bits rounds the magnitude half up: ties away from zero.
        return Interop.IntAsFloat((bits + 0x1000u) & 0xFFFFE000u);
    }

    /// <summary>
    /// bfloat16 (8 exponent bits, 7 mantissa bits): round to nearest, ties to even (PTX's <c>.rn</c>); infinities pass,
    /// a NaN stays a (quiet) NaN, a value past bf16's largest rounds to infinity.
    /// </summary>
    public static float Bf16(float x)
    {
        uint bits = Interop.FloatAsInt(x);
        if ((bits & 0x7F800000u) == 0x7F800000u)
            return (bits & 0x007FFFFFu) != 0 ? Interop.IntAsFloat((bits | 0x00400000u) & 0xFFFF0000u) : x;
        return Interop.IntAsFloat((bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u);
    }

    /// <summary>Two bf16-rounded values in one register as the tensor cores read them: <paramref name="low"/> in bits 0-15.</summary>
    public static uint PackBf16(float low, float high) =>
        (Interop.FloatAsInt(low) >> 16) | (Interop.FloatAsInt(high) & 0xFFFF0000u);
}

/// <summary>Operands rounded to a tensor-core format, for the devices that multiply them in fp32.</summary>
public static class RoundKernels
{
    /// <summary>Format codes: <see cref="Rounding.Tf32"/> and <see cref="Rounding.Bf16"/>.</summary>
    public const int Tf32 = 1, Bf16 = 2;

    /// <summary>target[i] = the first <paramref name="n"/> values of <paramref name="source"/> rounded to <paramref name="format"/> (grid-stride).</summary>
    public static void Round(ArrayView<float> source, int n, int format, ArrayView<float> target)
    {
        int step = Grids.Stride;
        for (int i = Grids.Start; i < n; i += step)
            target[i] = format == Bf16 ? Rounding.Bf16(source[i]) : Rounding.Tf32(source[i]);
    }
}

/// <summary>
/// One warp's matrix multiply-accumulate on the tensor cores, D = A * B + C with fp32 accumulators, in the PTX ISA's
/// fragment layouts (lane l: group g = l / 4, thread t = l % 4):
/// <list type="bullet">
/// <item><b>m16n8k8, TF32</b> (<see cref="Tf32"/>): a0 = A[g][t], a1 = A[g+8][t], a2 = A[g][t+4], a3 = A[g+8][t+4];
/// b0 = B[t][g], b1 = B[t+4][g].</item>
/// <item><b>m16n8k16, bf16</b> (<see cref="Bf16"/>): each register two values, the lower index in bits 0-15:
/// a0 = A[g][2t, 2t+1], a1 = A[g+8][2t, 2t+1], a2 = A[g][2t+8, 2t+9], a3 = A[g+8][2t+8, 2t+9];
/// b0 = B[2t, 2t+1][g], b1 = B[2t+8, 2t+9][g].</item>
/// <item>C and D (both): c0 = C[g][2t], c1 = C[g][2t+1], c2 = C[g+8][2t], c3 = C[g+8][2t+1].</item>
/// </list>
/// On CUDA this is one <c>mma.sync</c> instruction (sm_80 and newer). Elsewhere (the CPU accelerator shaped as a GPU,
/// warp 32) the warp computes the same product with shuffles: each lane gathers its rows of A and columns of B from
/// the lanes that hold them and adds the products in k order, in fp32. With operands already rounded to the format,
/// every product is exact, so the emulation equals a scalar loop over k bit for bit; the tensor cores' own order of
/// addition is not specified, so a GPU agrees with it to fp32 rounding, not bitwise. All 32 lanes must call it together.
/// </summary>
[TensorCoreKernels]
internal static class Mma
{
    /// <summary>m16n8k8 with TF32 operands (values already rounded by <see cref="Rounding.Tf32"/>).</summary>
    public static void Tf32(ref float d0, ref float d1, ref float d2, ref float d3,
        float a0, float a1, float a2, float a3, float b0, float b1)
    {
        if (CudaAsm.IsSupported)
        {
            Ref<float> r0 = d0, r1 = d1, r2 = d2, r3 = d3;
            Input<uint> x0 = Interop.FloatAsInt(a0), x1 = Interop.FloatAsInt(a1), x2 = Interop.FloatAsInt(a2), x3 = Interop.FloatAsInt(a3);
            Input<uint> y0 = Interop.FloatAsInt(b0), y1 = Interop.FloatAsInt(b1);
            CudaAsm.EmitRef("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};",
                ref r0, ref r1, ref r2, ref r3, ref x0, ref x1, ref x2, ref x3, ref y0, ref y1);
            d0 = r0.Value; d1 = r1.Value; d2 = r2.Value; d3 = r3.Value;
            return;
        }
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        for (int k = 0; k < 8; k++)
        {
            // Column k of A sits with thread k % 4 of a row's group, in a0/a1 below k = 4 and a2/a3 above; row k of
            // B with thread k % 4 of a column's group, in b0 or b1. The register chosen depends on k alone, so every
            // lane shuffles the same one.
            int from = k & 3;
            float upper = Warp.Shuffle(k < 4 ? a0 : a2, g * 4 + from);
            float lower = Warp.Shuffle(k < 4 ? a1 : a3, g * 4 + from);
            float bk = k < 4 ? b0 : b1;
            float left = Warp.Shuffle(bk, 2 * t * 4 + from);
            float right = Warp.Shuffle(bk, (2 * t + 1) * 4 + from);
            d0 += upper * left;
            d1 += upper * right;
            d2 += lower * left;
            d3 += lower * right;
        }
    }

    /// <summary>m16n8k16 with bf16 operands, two to a register (<see cref="Rounding.PackBf16"/>).</summary>
    public static void Bf16(ref float d0, ref float d1, ref float d2, ref float d3,
        uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        if (CudaAsm.IsSupported)
        {
            Ref<float> r0 = d0, r1 = d1, r2 = d2, r3 = d3;
            Input<uint> x0 = a0, x1 = a1, x2 = a2, x3 = a3, y0 = b0, y1 = b1;
            CudaAsm.EmitRef("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};",
                ref r0, ref r1, ref r2, ref r3, ref x0, ref x1, ref x2, ref x3, ref y0, ref y1);
            d0 = r0.Value; d1 = r1.Value; d2 = r2.Value; d3 = r3.Value;
            return;
        }
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        for (int k = 0; k < 16; k++)
        {
            // Column k of A: thread (k % 8) / 2 of the row's group, a0/a1 below k = 8 and a2/a3 above, in the half k % 2;
            // row k of B likewise in b0 or b1.
            int from = (k & 7) >> 1;
            bool high = (k & 1) != 0;
            uint upper = Warp.Shuffle(k < 8 ? a0 : a2, g * 4 + from);
            uint lower = Warp.Shuffle(k < 8 ? a1 : a3, g * 4 + from);
            uint bk = k < 8 ? b0 : b1;
            uint left = Warp.Shuffle(bk, 2 * t * 4 + from);
            uint right = Warp.Shuffle(bk, (2 * t + 1) * 4 + from);
            float u = Half(upper, high), l = Half(lower, high), x = Half(left, high), y = Half(right, high);
            d0 += u * x;
            d1 += u * y;
            d2 += l * x;
            d3 += l * y;
        }
    }

    /// <summary>One bf16 of a packed pair, as an fp32.</summary>
    static float Half(uint pair, bool high) => Interop.IntAsFloat(high ? pair & 0xFFFF0000u : pair << 16);
}

/// <summary>One warp's <see cref="Mma"/> on whole matrices: the fragments loaded by the layouts above, for tests and for the SASS check.</summary>
[TensorCoreKernels]
public static class MmaKernels
{
    /// <summary>
    /// D = A * B + C for one 16 x 8 tile by the first warp of the launch: A [16, K] and B [K, 8] row-major (already
    /// rounded to the format), C and D [16, 8]; K = 8 for TF32 (<paramref name="format"/> 1), 16 for bf16 (2).
    /// </summary>
    public static void Tile(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, int format, ArrayView<float> d)
    {
        int lane = Group.IdxX;
        if (lane >= 32) return;
        int g = lane >> 2, t = lane & 3;
        float d0 = c[g * 8 + 2 * t], d1 = c[g * 8 + 2 * t + 1], d2 = c[(g + 8) * 8 + 2 * t], d3 = c[(g + 8) * 8 + 2 * t + 1];
        if (format == RoundKernels.Bf16)
        {
            Mma.Bf16(ref d0, ref d1, ref d2, ref d3,
                Rounding.PackBf16(a[g * 16 + 2 * t], a[g * 16 + 2 * t + 1]),
                Rounding.PackBf16(a[(g + 8) * 16 + 2 * t], a[(g + 8) * 16 + 2 * t + 1]),
                Rounding.PackBf16(a[g * 16 + 2 * t + 8], a[g * 16 + 2 * t + 9]),
                Rounding.PackBf16(a[(g + 8) * 16 + 2 * t + 8], a[(g + 8) * 16 + 2 * t + 9]),
                Rounding.PackBf16(b[(2 * t) * 8 + g], b[(2 * t + 1) * 8 + g]),
                Rounding.PackBf16(b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g]));
        }
        else
        {
            Mma.Tf32(ref d0, ref d1, ref d2, ref d3,
                a[g * 8 + t], a[(g + 8) * 8 + t], a[g * 8 + t + 4], a[(g + 8) * 8 + t + 4],
                b[t * 8 + g], b[(t + 4) * 8 + g]);
        }
        d[g * 8 + 2 * t] = d0;
        d[g * 8 + 2 * t + 1] = d1;
        d[(g + 8) * 8 + 2 * t] = d2;
        d[(g + 8) * 8 + 2 * t + 1] = d3;
    }
}
