using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;

namespace Xception.Gpu.Ops;

/// <summary>
/// Optimizer updates of one parameter tensor from its gradient, on the device. L2 weight decay wd adds
/// wd * w to the gradient. SGD follows Keras (v = m v - lr g; w += v, or w += m v - lr g with Nesterov);
/// RMSprop follows Keras 3 / TensorFlow (ms = rho ms + (1 - rho) g^2; step = lr g / sqrt(ms + eps);
/// with momentum mom = m mom + step; w -= mom).
/// </summary>
public sealed class Optimizer
{
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, float, float, int, float, int, ArrayView<float>, ArrayView<float>> sgd;
    readonly Action<KernelConfig, ArrayView<float>, float, float, float, float, float, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> rmsprop;

    Optimizer(Device d)
    {
        this.d = d;
        sgd = d.Load("optimizer.sgd", a => a.LoadStreamKernel<ArrayView<float>, float, float, int, float, int, ArrayView<float>, ArrayView<float>>(OptimizerKernels.Sgd));
        rmsprop = d.Load("optimizer.rmsprop", a => a.LoadStreamKernel<ArrayView<float>, float, float, float, float, float, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>(OptimizerKernels.RmsProp));
    }

    public static Optimizer On(Device d) => d.Op(x => new Optimizer(x));

    public void Sgd(Tensor<float> w, Tensor<float> g, Tensor<float> velocity, float lr, float momentum, bool nesterov, float weightDecay)
    {
        Expect.Device("sgd", d, ("weights", w), ("gradient", g), ("velocity", velocity));
        Expect.SameShape("sgd", "gradient", g, "weights", w);
        Expect.SameShape("sgd", "velocity", velocity, "weights", w);
        sgd(d.GridFor(w.Length), g.View, lr, momentum, nesterov ? 1 : 0, weightDecay, w.Length, w.View, velocity.View);
    }

    public void RmsProp(Tensor<float> w, Tensor<float> g, Tensor<float> meanSquare, Tensor<float> mom,
        float lr, float rho, float momentum, float epsilon, float weightDecay)
    {
        Expect.Device("rmsprop", d, ("weights", w), ("gradient", g), ("mean square", meanSquare), ("momentum", mom));
        Expect.SameShape("rmsprop", "gradient", g, "weights", w);
        Expect.SameShape("rmsprop", "mean square", meanSquare, "weights", w);
        Expect.SameShape("rmsprop", "momentum", mom, "weights", w);
        rmsprop(d.GridFor(w.Length), g.View, lr, rho, momentum, epsilon, weightDecay, w.Length, w.View, meanSquare.View, mom.View);
    }

    internal static class Reference
    {
        public static void Sgd(double[] w, double[] g, double[] v, double lr, double momentum, bool nesterov, double wd)
        {
            for (int i = 0; i < w.Length; i++)
            {
                double grad = g[i] + wd * w[i];
                v[i] = momentum * v[i] - lr * grad;
                w[i] += nesterov ? momentum * v[i] - lr * grad : v[i];
            }
        }

        public static void RmsProp(double[] w, double[] g, double[] ms, double[] mom, double lr, double rho, double momentum, double eps, double wd)
        {
            for (int i = 0; i < w.Length; i++)
            {
                double grad = g[i] + wd * w[i];
                ms[i] = rho * ms[i] + (1 - rho) * grad * grad;
                double step = lr * grad / Math.Sqrt(ms[i] + eps);
                if (momentum != 0) { step += momentum * mom[i]; mom[i] = step; }
                w[i] -= step;
            }
        }
    }
}
