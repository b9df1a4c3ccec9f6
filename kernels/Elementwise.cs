namespace Xception.Gpu.Kernels;

using ILGPU;

/// <summary>Residual add, scaling, and the bookkeeping kernels around them.</summary>
public static class ElementwiseKernels
{
    /// <summary>y = a + b (the residual connection). Its backward passes dy to both inputs unchanged.</summary>
    public static void Add(ArrayView<float> a, ArrayView<float> b, int n, ArrayView<float> y)
    {
        int step = Grids.Stride;
        for (int i = Grids.Start; i < n; i += step) y[i] = a[i] + b[i];
    }

    /// <summary>acc += g: sums the gradients of a tensor read by two layers (the residual fork).</summary>
    public static void Accumulate(ArrayView<float> g, int n, ArrayView<float> acc)
    {
        int step = Grids.Stride;
        for (int i = Grids.Start; i < n; i += step) acc[i] += g[i];
    }

    /// <summary>y[r, c] += bias[c] (the dense layer's bias).</summary>
    public static void AddBias(ArrayView<float> bias, int rows, int cols, ArrayView<float> y)
    {
        int total = rows * cols;
        int step = Grids.Stride;
        for (int i = Grids.Start; i < total; i += step) y[i] += bias[i % cols];
    }

    /// <summary>x *= factor in place: a single float32 multiply per value, so the bits equal the host's x * factor.</summary>
    public static void Scale(ArrayView<float> x, float factor, int n)
    {
        int step = Grids.Stride;
        for (int i = Grids.Start; i < n; i += step) x[i] *= factor;
    }
}
