using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>The per-axis geometry (<see cref="AxisGeometry"/>) under every sliding-window op's <see cref="Window.Of"/>.</summary>
public class WindowTests
{
    [Fact]
    public void SamePaddingIsTensorFlowsAsymmetricOne()
    {
        var g = AxisGeometry.Of("t", 74, 3, 2, Padding.Same);
        Assert.Equal((37, 0), (g.Out, g.PadBefore)); // total pad 1 goes after
        g = AxisGeometry.Of("t", 147, 3, 2, Padding.Same);
        Assert.Equal((74, 1), (g.Out, g.PadBefore));
        g = AxisGeometry.Of("t", 299, 3, 2, Padding.Valid);
        Assert.Equal((149, 0), (g.Out, g.PadBefore));
    }
}
