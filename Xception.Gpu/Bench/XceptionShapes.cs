namespace Xception.Gpu.Bench;

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
/// The shapes of Xception's layers for an input size (299 by default), from Keras' layer names, plus the
/// fixed reference shape for the CPU's pointwise figure (N = 8, 128 -> 128 channels, 28 x 28).
/// </summary>
public static class XceptionShapes
{
    public static IReadOnlyList<OpShape> For(int imageSize, int batch)
    {
        int s1 = (imageSize - 3) / 2 + 1;   // block1_conv1: 3x3 stride 2 'valid'
        int s2 = s1 - 2;                    // block1_conv2: 3x3 'valid'
        int s3 = (s2 + 1) / 2, s4 = (s3 + 1) / 2, s5 = (s4 + 1) / 2, s6 = (s5 + 1) / 2; // 'same' stride-2 pools
        int n = batch;
        var list = new List<OpShape>
        {
            new(BenchOp.Pointwise, "reference 28x28 128->128", n, 28, 28, 128, 128, 1, 1, Padding.Same),
            new(BenchOp.Conv, "block1_conv1", n, imageSize, imageSize, 3, 32, 3, 2, Padding.Valid),
            new(BenchOp.Conv, "block1_conv2", n, s1, s1, 32, 64, 3, 1, Padding.Valid),
        };
        // (layer, size, in, out) of every separable convolution.
        (string, int, int, int)[] seps =
        [
            ("block2_sepconv1", s2, 64, 128), ("block2_sepconv2", s2, 128, 128),
            ("block3_sepconv1", s3, 128, 256), ("block3_sepconv2", s3, 256, 256),
            ("block4_sepconv1", s4, 256, 728), ("block4_sepconv2", s4, 728, 728),
            ("block5..12_sepconv1..3", s5, 728, 728),
            ("block13_sepconv1", s5, 728, 728), ("block13_sepconv2", s5, 728, 1024),
            ("block14_sepconv1", s6, 1024, 1536), ("block14_sepconv2", s6, 1536, 2048),
        ];
        foreach (var (layer, size, cin, cout) in seps)
        {
            list.Add(new(BenchOp.Depthwise, layer + "/depthwise", n, size, size, cin, cin, 3, 1, Padding.Same));
            list.Add(new(BenchOp.Pointwise, layer + "/pointwise", n, size, size, cin, cout, 1, 1, Padding.Same));
            list.Add(new(BenchOp.BatchNorm, layer + "_bn", n, size, size, cout, cout, 1, 1, Padding.Same));
        }
        (string, int, int, int)[] shortcuts = [("block2 shortcut", s2, 64, 128), ("block3 shortcut", s3, 128, 256), ("block4 shortcut", s4, 256, 728), ("block13 shortcut", s5, 728, 1024)];
        foreach (var (layer, size, cin, cout) in shortcuts)
        {
            list.Add(new(BenchOp.Pointwise, layer, n, size, size, cin, cout, 1, 2, Padding.Same));
            list.Add(new(BenchOp.Pool, layer.Replace("shortcut", "pool"), n, size, size, cout, cout, 3, 2, Padding.Same));
        }
        return list;
    }
}
