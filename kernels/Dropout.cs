namespace Xception.Gpu.Kernels;

using ILGPU;

/// <summary>
/// Inverted dropout, as Keras: a kept value is scaled by 1 / (1 - rate), so inference needs no scaling.
/// The keep decision is a hash of (seed, index), so the backward pass recomputes the mask instead of
/// storing it, and a run is reproducible from its seed.
/// </summary>
public static class DropoutKernels
{
    /// <summary>A uniform number in [0, 1) from (seed, index): a 32-bit integer mix (lowbias32 style).</summary>
    public static float Uniform(uint seed, int index)
    {
        uint h = seed ^ ((uint)index * 0x9E3779B9u);
        h ^= h >> 16; h *= 0x7FEB352Du;
        h ^= h >> 15; h *= 0x846CA68Bu;
        h ^= h >> 16;
        return (int)(h >> 8) * (1f / 16777216f); // via int: a uint-to-float conversion goes through float64
    }

    public static void Forward(ArrayView<float> x, float rate, uint seed, int n, ArrayView<float> y)
    {
        float scale = 1f / (1f - rate);
        int step = Grids.Stride;
        for (int i = Grids.Start; i < n; i += step)
            y[i] = Uniform(seed, i) >= rate ? x[i] * scale : 0f;
    }

    public static void Backward(ArrayView<float> dy, float rate, uint seed, int n, ArrayView<float> dx)
    {
        float scale = 1f / (1f - rate);
        int step = Grids.Stride;
        for (int i = Grids.Start; i < n; i += step)
            dx[i] = Uniform(seed, i) >= rate ? dy[i] * scale : 0f;
    }
}
