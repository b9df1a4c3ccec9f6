namespace Xception.Gpu.Kernels;

using ILGPU;
using ILGPU.Algorithms;

/// <summary>
/// Parameter updates, elementwise over one parameter tensor. L2 weight decay wd adds wd * w to the
/// gradient first (the gradient of the loss term wd / 2 * ||w||^2).
/// </summary>
public static class OptimizerKernels
{
    /// <summary>
    /// SGD with momentum, Keras' formulation: v = momentum * v - lr * g; w += v, or with Nesterov
    /// w += momentum * v - lr * g. With momentum 0 this is plain SGD.
    /// </summary>
    public static void Sgd(
        ArrayView<float> g,       // [P] gradient
        float lr, float momentum, int nesterov, float wd, int n,
        ArrayView<float> w,       // [P] in/out
        ArrayView<float> v)       // [P] velocity in/out
    {
        int step = Grids.Stride;
        for (int i = Grids.Start; i < n; i += step)
        {
            float grad = g[i] + wd * w[i];
            float vel = momentum * v[i] - lr * grad;
            v[i] = vel;
            w[i] += nesterov != 0 ? momentum * vel - lr * grad : vel;
        }
    }

    /// <summary>
    /// RMSprop as Keras 3 and TensorFlow's RMSPropOptimizer: ms = rho * ms + (1 - rho) * g^2;
    /// step = lr * g / sqrt(ms + eps); with momentum: mom = momentum * mom + step, w -= mom; else w -= step.
    /// </summary>
    public static void RmsProp(
        ArrayView<float> g,       // [P] gradient
        float lr, float rho, float momentum, float eps, float wd, int n,
        ArrayView<float> w,       // [P] in/out
        ArrayView<float> ms,      // [P] mean square in/out
        ArrayView<float> mom)     // [P] momentum in/out (unused when momentum is 0)
    {
        int step = Grids.Stride;
        for (int i = Grids.Start; i < n; i += step)
        {
            float grad = g[i] + wd * w[i];
            float s = rho * ms[i] + (1f - rho) * grad * grad;
            ms[i] = s;
            float delta = lr * grad / XMath.Sqrt(s + eps);
            if (momentum != 0f)
            {
                delta += momentum * mom[i];
                mom[i] = delta;
            }
            w[i] -= delta;
        }
    }
}
