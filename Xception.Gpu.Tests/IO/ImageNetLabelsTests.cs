using Xception.Gpu.Inference;
using Xunit;

namespace Xception.Gpu.Tests.IO;

public class ImageNetLabelsTests
{
    [Fact]
    public void ThousandNamesInClassOrder()
    {
        var all = ImageNetLabels.All;
        Assert.Equal(1000, all.Count);
        Assert.Equal("tench, Tinca tinca", all[0]);
        Assert.Equal("tabby, tabby cat", all[281]);
        Assert.Equal("toilet tissue, toilet paper, bathroom tissue", all[999]);
        Assert.All(all, n => Assert.True(n.Length > 0 && n == n.Trim(), $"label '{n}'"));
        Assert.Same(all, ImageNetLabels.All);
    }
}
