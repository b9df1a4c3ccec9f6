using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Runtime;

public class DeviceTests
{
    [Theory]
    [InlineData("auto", null, 0)]
    [InlineData("", null, 0)]
    [InlineData("cpu", DeviceKind.Cpu, 0)]
    [InlineData("CUDA", DeviceKind.Cuda, 0)]
    [InlineData("cuda:1", DeviceKind.Cuda, 1)]
    [InlineData("opencl:0", DeviceKind.OpenCL, 0)]
    [InlineData("cpu:2", DeviceKind.Cpu, 2)]
    public void ParsesDeviceStrings(string text, DeviceKind? kind, int index)
    {
        var s = DeviceSpec.Parse(text);
        Assert.Equal(kind, s.Kind);
        Assert.Equal(index, s.Index);
    }

    [Theory]
    [InlineData("tpu")]
    [InlineData("cuda:x")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:0:1")]
    public void UnknownDeviceStringIsOneClearError(string text)
    {
        var e = Assert.Throws<DeviceException>(() => Device.Open(text));
        Assert.Equal($"unknown device '{text}': expected auto, cpu, cpu:N, cuda, cuda:N, opencl or opencl:N", e.Message);
    }

    [Fact]
    public void MissingDeviceNamesWhatThereIs()
    {
        var e = Assert.Throws<DeviceException>(() => Device.Open("cuda:7"));
        Assert.StartsWith("no device cuda:7: this machine has ", e.Message);
    }

    [Fact]
    public void DeviceListErrorsNameTheListSoCallersCanNameTheirOption()
    {
        var e = Assert.Throws<DeviceListException>(() => DeviceSpec.ParseList("cuda*0"));
        Assert.StartsWith("device list 'cuda*0': expected a list such as cpu:0,cpu:1", e.Message);
        Assert.StartsWith("--devices 'cuda*0': expected a list such as cpu:0,cpu:1", e.Describe("--devices"));
        e = Assert.Throws<DeviceListException>(() => DeviceSpec.ParseList(" "));
        Assert.StartsWith("device list is empty: expected ", e.Message);
        e = Assert.Throws<DeviceListException>(() => DeviceSpec.ParseList("cuda:1,cuda:1"));
        Assert.Equal("device list 'cuda:1,cuda:1': it names cuda:1 twice: one replica per GPU", e.Message);
    }

    [Fact]
    public void ListsTheCpuAndAutoFallsBackToIt()
    {
        var list = Device.List();
        Assert.Equal("cpu:0", list[0].Id);
        Assert.True(list[0].Usable);
        if (!list.Any(d => d.Usable && d.Kind != DeviceKind.Cpu))
        {
            using var d = Device.Open("auto");
            Assert.Equal(DeviceKind.Cpu, d.Kind);
        }
    }

    [Fact]
    public void KernelsAreLoadedOncePerDevice()
    {
        using var d = Device.Open("cpu");
        int loads = 0;
        for (int i = 0; i < 3; i++)
            d.Load("test.relu", a => { loads++; return a.LoadStreamKernel<ArrayView<float>, int, ArrayView<float>>(Kernels.ActivationKernels.ReluForward); });
        Assert.Equal(1, loads);
        Assert.Same(Gemm.On(d), Gemm.On(d));
    }

    /// <summary>Allocates a managed object: ILGPU refuses to compile it for any accelerator.</summary>
    static void BrokenKernel(ArrayView<float> x)
    {
        var list = new List<float> { 1f };
        x[0] = list[0];
    }

    [Fact]
    public void KernelThatFailsToCompileIsNamedAndTheDeviceRecovers()
    {
        using var d = Device.Open("cpu");
        using var before = Tensor.Zeros(d, 4);
        var e = Assert.Throws<KernelCompileException>(() =>
            d.Load("test.broken", a => a.LoadStreamKernel<ArrayView<float>>(BrokenKernel)));
        Assert.StartsWith("kernel 'test.broken' failed to compile for cpu:0", e.Message);
        Assert.DoesNotContain("\n", e.Message);
        // ILGPU leaves a context unusable after a failed compile; the device recreated it, so ops work again
        // and tensors of the old context say so instead of crashing.
        Assert.Equal(1, d.Generation);
        var x = TestData.Uniform(16, 1);
        using var tx = Tensor.From(d, x, 16);
        using var ty = Tensor.Zeros(d, 16);
        Activation.On(d).Forward(ActivationKind.Relu, tx, ty);
        Check.Close("relu after recovery", ty.ToArray(), Activation.Reference.Forward(ActivationKind.Relu, TestData.D(x)), 0);
        var stale = Assert.Throws<DeviceException>(() => Activation.On(d).Forward(ActivationKind.Relu, before, before));
        Assert.Contains("recreated", stale.Message);
    }

    [Fact]
    public void TensorsCheckTheirData()
    {
        using var d = Device.Open("cpu");
        using var t = Tensor.Zeros(d, 2, 3);
        var e = Assert.Throws<ShapeException>(() => t.CopyFrom(new float[5]));
        Assert.Equal("copy: tensor (2, 3) holds 6 values, got 5", e.Message);
        Assert.Throws<ShapeException>(() => new Shape(2, 0, 3));
    }
}
