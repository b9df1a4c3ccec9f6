using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>
/// Every op refuses a tensor that lives on another device, before launching anything, with one line that names
/// the op, the argument, its shape and both devices.
/// </summary>
public class DeviceCheckTests
{
    [Fact]
    public void ATensorOfAnotherDeviceIsNamedWithBothDevices()
    {
        var d = Backends.Get(Backends.Cpu);
        // A second CPU device prints like the first; the message must still tell them apart.
        using var other = Device.Open("cpu");
        string elsewhere = $"is on another device opened as {other}, but the op runs on {d}";

        using var x = Tensor.Zeros(d, 1, 7, 5, 3);
        using var y = Tensor.Zeros(d, 1, 7, 5, 4);
        using var w = Tensor.Zeros(other, 3, 3, 3, 4);
        var e = Assert.Throws<OpArgumentException>(() => Conv2D.On(d).Forward(x, w, 1, Padding.Same, y));
        Assert.Equal($"conv2d: weights (3, 3, 3, 4) {elsewhere}", e.Message);

        using var a = Tensor.Zeros(d, 2, 3);
        using var b = Tensor.Zeros(other, 2, 3);
        e = Assert.Throws<OpArgumentException>(() => Residual.On(d).Forward(a, b, a));
        Assert.Equal($"add: second input (2, 3) {elsewhere}", e.Message);
        e = Assert.Throws<OpArgumentException>(() => Residual.On(d).Accumulate(a, b));
        Assert.Equal($"add: accumulator (2, 3) {elsewhere}", e.Message);

        // The integer label buffer is checked as well as the float tensors.
        using var logits = Tensor.Zeros(d, 2, 3);
        using var labels = Tensor.Zeros<int>(other, 2);
        e = Assert.Throws<OpArgumentException>(() => Loss.On(d).SoftmaxCrossEntropy(logits, [0, 1], labels, a));
        Assert.Equal($"softmax_cross_entropy: label buffer (2) {elsewhere}", e.Message);

        // Parameters inside a record: batch norm's moving variance.
        using var g = Tensor.Zeros(d, 3); using var be = Tensor.Zeros(d, 3); using var mm = Tensor.Zeros(d, 3);
        using var mv = Tensor.Zeros(other, 3);
        e = Assert.Throws<OpArgumentException>(() => BatchNorm.On(d).ForwardInference(x, new BatchNormParams(g, be, mm, mv), x));
        Assert.Equal($"batchnorm: moving_variance (3) {elsewhere}", e.Message);

        using var v = Tensor.Zeros(other, 2, 3);
        e = Assert.Throws<OpArgumentException>(() => Optimizer.On(d).Sgd(a, a, v, 0.1f, 0.9f, false, 0f));
        Assert.Equal($"sgd: velocity (2, 3) {elsewhere}", e.Message);

        using var pooled = Tensor.Zeros(d, 1, 4, 3, 3);
        using var argmax = Tensor.Zeros<int>(other, 1, 4, 3, 3);
        e = Assert.Throws<OpArgumentException>(() => MaxPool.On(d).Forward(x, 3, 2, Padding.Same, pooled, argmax));
        Assert.Equal($"maxpool: argmax (1, 4, 3, 3) {elsewhere}", e.Message);
    }

    [Fact]
    public void DevicesThatPrintDifferentlyAreNamedAsTheyPrint()
    {
        var cpu = Backends.Get(Backends.Cpu);
        var gpuShaped = Backends.Get(Backends.GpuShapedCpu);
        using var x = Tensor.Zeros(cpu, 4, 5);
        using var y = Tensor.Zeros(gpuShaped, 4, 5);
        var e = Assert.Throws<OpArgumentException>(() => Activation.On(cpu).Forward(ActivationKind.Relu, x, y));
        Assert.Equal($"activation: output (4, 5) is on {gpuShaped}, but the op runs on {cpu}", e.Message);
        e = Assert.Throws<OpArgumentException>(() => Dropout.On(gpuShaped).Backward(y, 0.5f, 1, x));
        Assert.Equal($"dropout: input gradient (4, 5) is on {cpu}, but the op runs on {gpuShaped}", e.Message);
    }
}
