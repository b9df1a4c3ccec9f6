namespace Xception.Gpu.Kernels;

using ILGPU;
using ILGPU.Algorithms;

/// <summary>Elementwise activations. Backward passes read the forward output y, which is all they need.</summary>
public static class ActivationKernels
{
    public static void ReluForward(ArrayView<float> x, int n, ArrayView<float> y)
    {
        int step = Grids.Stride;
        for (int i = Grids.Start; i < n; i += step)
        {
            float v = x[i];
            y[i] = v > 0f ? v : 0f;
        }
    }

    /// <summary>dx = dy where y &gt; 0, else 0 (the derivative at 0 is taken as 0, as TensorFlow does).</summary>
    public static void ReluBackward(ArrayView<float> dy, ArrayView<float> y, int n, ArrayView<float> dx)
    {
        int step = Grids.Stride;
        for (int i = Grids.Start; i < n; i += step)
            dx[i] = y[i] > 0f ? dy[i] : 0f;
    }

    /// <summary>y = x for x &gt; 0, alpha * (exp(x) - 1) otherwise.</summary>
    public static void EluForward(ArrayView<float> x, float alpha, int n, ArrayView<float> y)
    {
        int step = Grids.Stride;
        for (int i = Grids.Start; i < n; i += step)
        {
            float v = x[i];
            y[i] = v > 0f ? v : alpha * (XMath.Exp(v) - 1f);
        }
    }

    /// <summary>dx = dy for y &gt; 0, dy * (y + alpha) otherwise (since d/dx alpha(e^x - 1) = y + alpha).</summary>
    public static void EluBackward(ArrayView<float> dy, ArrayView<float> y, float alpha, int n, ArrayView<float> dx)
    {
        int step = Grids.Stride;
        for (int i = Grids.Start; i < n; i += step)
        {
            float v = y[i];
            dx[i] = v > 0f ? dy[i] : dy[i] * (v + alpha);
        }
    }
}
