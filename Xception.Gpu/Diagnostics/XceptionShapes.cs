using Xception.Gpu.Architecture;
using Xception.Gpu.Ops;
namespace Xception.Gpu.Diagnostics;

/// <summary>Kinds of op the benchmark times.</summary>
public enum BenchOp { Pointwise, Depthwise, Conv, Pool, BatchNorm }

/// <summary>
/// One op at one of Xception's shapes: input [N, H, W, C], output channels O, window K, stride.
/// </summary>
public sealed record OpShape(BenchOp Op, string Layer, int N, int H, int W, int C, int O, int K, int Stride, Padding Padding)
{
    public override string ToString() => $"{N}x{H}x{W}x{C}" + (Op is BenchOp.Pointwise or BenchOp.Conv ? $"->{O}" : "") +
        (K > 1 ? $" k{K}" : "") + (Stride > 1 ? $" s{Stride}" : "");
}

/// <summary>
/// The shapes of Xception's layers for an input size (299 by default), walked from the model's plan
/// (<see cref="XceptionPlan"/>, the topology the builder builds), plus the fixed reference shape for the CPU's
/// pointwise figure (N = 8, 128 -> 128 channels, 28 x 28). The middle flow's identical layers are timed once.
/// </summary>
public static class XceptionShapes
{
    public static IReadOnlyList<OpShape> For(int imageSize, int batch)
    {
        var config = new XceptionConfig { ImageSize = imageSize };
        var plan = XceptionPlan.Of(config);
        int n = batch;
        var list = new List<OpShape> { new(BenchOp.Pointwise, "reference 28x28 128->128", n, 28, 28, 128, 128, 1, 1, Padding.Same) };
        int size = imageSize, channels = config.InputChannels;
        foreach (var conv in plan.Stem)
        {
            list.Add(new(BenchOp.Conv, conv.Name, n, size, size, channels, conv.Filters, conv.Kernel, conv.Stride, conv.Padding));
            size = AxisGeometry.Of(conv.Name, size, conv.Kernel, conv.Stride, conv.Padding).Out;
            channels = conv.Filters;
        }
        bool middleTimed = false;
        foreach (var block in plan.Blocks)
        {
            if (block.Kind == BlockKind.Middle && middleTimed) continue; // the same shapes again
            string name = block.Kind == BlockKind.Middle ? $"block5..{4 + plan.MiddleBlocks}" : block.Name;
            int blockIn = channels;
            for (int i = 0; i < block.Widths.Count; i++)
            {
                string layer = block.Kind == BlockKind.Middle ? $"{name}_sepconv1..{block.Widths.Count}" : $"{name}_sepconv{i + 1}";
                if (block.Kind == BlockKind.Middle && i > 0) break;
                list.Add(new(BenchOp.Depthwise, layer + "/depthwise", n, size, size, channels, channels, 3, 1, Padding.Same));
                list.Add(new(BenchOp.Pointwise, layer + "/pointwise", n, size, size, channels, block.Widths[i], 1, 1, Padding.Same));
                list.Add(new(BenchOp.BatchNorm, layer + "_bn", n, size, size, block.Widths[i], block.Widths[i], 1, 1, Padding.Same));
                channels = block.Widths[i];
            }
            if (block.Kind == BlockKind.Middle) { middleTimed = true; continue; }
            if (block.Kind != BlockKind.Downsampling) continue;
            int pool = XceptionBlock.Pool, stride = XceptionBlock.PoolStride;
            list.Add(new(BenchOp.Pointwise, $"{block.Name} shortcut", n, size, size, blockIn, channels, 1, stride, XceptionBlock.PoolPadding));
            list.Add(new(BenchOp.Pool, $"{block.Name} pool", n, size, size, channels, channels, pool, stride, XceptionBlock.PoolPadding));
            size = AxisGeometry.Of(block.Name, size, pool, stride, XceptionBlock.PoolPadding).Out;
        }
        return list;
    }
}
