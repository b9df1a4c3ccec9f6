using Xception.Gpu.Ops;

namespace Xception.Gpu.Architecture;

/// <summary>The three block shapes of Figure 5.</summary>
public enum BlockKind
{
    /// <summary>
    /// Blocks 2-4 and the exit flow's first: [ReLU] SepConv BN ReLU SepConv BN, a 3x3 stride-2 max pool,
    /// plus a strided 1x1 convolution to the second width as the shortcut.
    /// </summary>
    Downsampling,

    /// <summary>The middle flow's: three [ReLU SepConv BN] added to the block's input.</summary>
    Middle,

    /// <summary>The exit flow's last: two [SepConv BN ReLU], no shortcut.</summary>
    Final,
}

/// <summary>A convolution of block 1: 3x3 without padding, then batch norm and ReLU.</summary>
/// <param name="Name">Keras' layer name, e.g. <c>block1_conv1</c>.</param>
/// <param name="Filters">Output channels, already scaled by the width multiplier.</param>
/// <param name="Stride">Stride of the convolution.</param>
public sealed record StemConv(string Name, int Filters, int Stride)
{
    /// <summary>Kernel size (Figure 5: 3x3).</summary>
    public int Kernel => 3;

    /// <summary>Padding ('valid': the stem shrinks the image by two pixels per convolution).</summary>
    public Padding Padding => Padding.Valid;
}

/// <summary>One block of Figure 5.</summary>
/// <param name="Name">Keras' name prefix of its layers, e.g. <c>block2</c>.</param>
/// <param name="Kind">Which of the three shapes it has.</param>
/// <param name="Widths">Filters of each separable convolution in order, already scaled by the width multiplier.</param>
/// <param name="ReluFirst">
/// Whether it starts with a ReLU; only block 2 does not, since block 1 already ends with one.
/// </param>
public sealed record XceptionBlock(string Name, BlockKind Kind, IReadOnlyList<int> Widths, bool ReluFirst = true)
{
    /// <summary>Window of the max pool that closes a <see cref="BlockKind.Downsampling"/> block.</summary>
    public const int Pool = 3;

    /// <summary>
    /// Stride of that pool and of the shortcut convolution beside it: both must shrink the image alike for
    /// the two to be added.
    /// </summary>
    public const int PoolStride = 2;

    /// <summary>Padding of the pool and of the shortcut ('same': the size is halved, rounded up).</summary>
    public const Padding PoolPadding = Padding.Same;
}

/// <summary>
/// Xception's topology as Figure 5 of the paper draws it, for one configuration: the block-1 stem, the
/// entry flow's blocks, the middle flow's and the exit flow's, with Keras' names and the scaled widths.
/// <see cref="XceptionBuilder"/> builds layers from it and <see cref="XceptionConfig.Validate"/> checks sizes
/// and channels against it, so the topology is written down once.
/// </summary>
public sealed class XceptionPlan
{
    XceptionPlan(IReadOnlyList<StemConv> stem, IReadOnlyList<XceptionBlock> entry, int middleBlocks,
        Func<int, XceptionBlock> middleBlock, IReadOnlyList<XceptionBlock> exit)
    {
        Stem = stem; Entry = entry; Exit = exit;
        MiddleBlocks = middleBlocks; this.middleBlock = middleBlock;
    }

    readonly Func<int, XceptionBlock> middleBlock;

    /// <summary>Block 1: two plain convolutions.</summary>
    public IReadOnlyList<StemConv> Stem { get; }

    /// <summary>The entry flow's blocks after block 1 (blocks 2-4).</summary>
    public IReadOnlyList<XceptionBlock> Entry { get; }

    /// <summary>Number of middle-flow blocks (at least 0).</summary>
    public int MiddleBlocks { get; }

    /// <summary>
    /// The middle flow's blocks (block5 onwards). Made on demand, so that a plan of a configuration not yet
    /// checked (any number of middle blocks) costs nothing until it is walked.
    /// </summary>
    public IEnumerable<XceptionBlock> Middle => Enumerable.Range(0, MiddleBlocks).Select(middleBlock);

    /// <summary>The exit flow's blocks (Figure 5's blocks 13 and 14, renumbered after the middle flow).</summary>
    public IReadOnlyList<XceptionBlock> Exit { get; }

    /// <summary>Every block after the stem, in order.</summary>
    public IEnumerable<XceptionBlock> Blocks => Entry.Concat(Middle).Concat(Exit);

    /// <summary>Output channels of the last block (the features the classifier or the pooling sees).</summary>
    public int Features => Exit[^1].Widths[^1];

    /// <summary>The plan of a configuration (which need not be valid yet).</summary>
    public static XceptionPlan Of(XceptionConfig c)
    {
        int W(int baseWidth) => c.Channels(baseWidth);
        int m = Math.Max(0, c.MiddleBlocks);
        XceptionBlock Downsampling(string name, int first, int second, bool reluFirst = true) =>
            new(name, BlockKind.Downsampling, [W(first), W(second)], reluFirst);
        return new XceptionPlan(
            stem: [new("block1_conv1", W(32), c.EntryStride), new("block1_conv2", W(64), 1)],
            entry: [Downsampling("block2", 128, 128, reluFirst: false), Downsampling("block3", 256, 256), Downsampling("block4", 728, 728)],
            middleBlocks: m, middleBlock: i => new($"block{5 + i}", BlockKind.Middle, [W(728), W(728), W(728)]),
            exit: [Downsampling($"block{5 + m}", 728, 1024), new($"block{6 + m}", BlockKind.Final, [W(1536), W(2048)])]);
    }

    /// <summary>
    /// Spatial size after the last pooling block for a square input of <paramref name="imageSize"/> pixels;
    /// 0 when the stem's unpadded convolutions do not fit the image. Middle and final blocks keep the size
    /// (a middle block adds its input to its output, which needs equal sizes; separable convolutions pad).
    /// </summary>
    public int ExitSize(int imageSize)
    {
        int s = imageSize;
        foreach (var conv in Stem)
        {
            // An unpadded convolution needs at least its kernel's pixels; smaller has no output at all.
            if (conv.Padding == Padding.Valid && s < conv.Kernel) return 0;
            s = AxisGeometry.Of(conv.Name, s, conv.Kernel, conv.Stride, conv.Padding).Out;
        }
        // Not through the middle flow: it keeps the size, and an unchecked configuration may have any number of blocks.
        foreach (var b in Entry.Concat(Exit).Where(b => b.Kind == BlockKind.Downsampling))
            s = AxisGeometry.Of(b.Name, s, XceptionBlock.Pool, XceptionBlock.PoolStride, XceptionBlock.PoolPadding).Out;
        return s;
    }

    /// <summary>Input channels of every separable convolution, in the order the blocks run them.</summary>
    public IEnumerable<int> SeparableInputs()
    {
        int channels = Stem[^1].Filters;
        foreach (var b in Blocks)
            foreach (var w in b.Widths)
            {
                yield return channels;
                channels = w;
            }
    }
}
