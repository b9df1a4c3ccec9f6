namespace Xception.Gpu.Kernels;

using ILGPU;

/// <summary>
/// C[M, N] = A[M, K] * B[K, N] (+ beta * C) on the tensor cores, operands rounded to TF32 or bf16, fp32 accumulation
/// (<see cref="TensorCoreTile"/>). Addressing, split-K and beta as <see cref="GemmKernels.Tiled"/>, so the op swaps one
/// for the other.
/// </summary>
[TensorCoreKernels]
public static class GemmTensorCoreKernels
{
    /// <summary>Tile and group shape (<see cref="TensorCoreTile"/>'s).</summary>
    public const int TileM = TensorCoreTile.TileM, TileN = TensorCoreTile.TileN, GroupSize = TensorCoreTile.GroupSize;

    public static void Tiled(
        ArrayView<float> a, int aRow, int aCol,   // A [M, K]
        ArrayView<float> b, int bRow, int bCol,   // B [K, N]
        int m, int n, int k, int kChunk, float beta, int format,
        ArrayView<float> c)                       // C [M, N], or [S, M, N] partials when split
        => TensorCoreTile.Run(new StridedOperand(a, aRow, aCol), new StridedOperand(b, bCol, bRow), m, n, k, kChunk, beta, format, c);
}
