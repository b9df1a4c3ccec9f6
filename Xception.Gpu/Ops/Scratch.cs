namespace Xception.Gpu.Ops;

/// <summary>Scratch slots of a device; ops that call one another use different slots.</summary>
internal static class ScratchSlot
{
    public const int GemmPartials = 0;
    public const int Strided = 1;        // pointwise stride-2 gather / gradient before scatter
    public const int RowPartials = 2;    // per-chunk partial sums of column reductions
    public const int Statistics = 3;     // batch-norm per-channel sums
    public const int GemmPacked = 4;     // the CPU GEMM's B in panels
    public const int Columns = 5;        // the CPU convolution's im2col columns
}
