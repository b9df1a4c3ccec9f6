namespace Xception.Gpu.Tests.Ops;

/// <summary>
/// Odd shapes for sliding-window ops: 13x11 inputs, channel counts that divide no tile, stride 1 and 2,
/// 'same' and 'valid', and Xception's own 74 -> 37 stride-2 'same' case, whose padding is asymmetric
/// (0 before, 1 after). Channel counts 37 and 21 give the CPU's SIMD kernels (vectorized over channels) whole
/// vectors and a remainder on every instruction-set path (16, 8 and 4 floats a vector).
/// </summary>
public static class WindowCases
{
    public record Case(int N, int H, int W, int C, int O, int K, int Stride, Padding Padding)
    {
        public override string ToString() => $"{N}x{H}x{W}x{C}->{O} k{K} s{Stride} {Padding}";
    }

    public static readonly Case[] All =
    [
        new(2, 13, 11, 5, 7, 3, 1, Padding.Same),
        new(2, 13, 11, 5, 7, 3, 2, Padding.Same),
        new(1, 13, 11, 3, 6, 3, 2, Padding.Valid),
        new(1, 12, 10, 2, 3, 3, 2, Padding.Same),
        new(1, 74, 74, 3, 5, 3, 2, Padding.Same),
        new(2, 9, 7, 37, 11, 3, 1, Padding.Same),
        new(1, 10, 9, 21, 6, 3, 2, Padding.Valid),
    ];

    /// <summary>Smaller set for gradient checks of the float64 references.</summary>
    public static readonly Case[] Small =
    [
        new(2, 7, 6, 3, 4, 3, 2, Padding.Same),
        new(1, 8, 7, 2, 3, 3, 1, Padding.Valid),
    ];
}
