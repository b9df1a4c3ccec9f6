namespace Xception.Gpu.Ops;

/// <summary>Scratch slots of a device; ops that call one another use different slots.</summary>
internal static class ScratchSlot
{
    public const int GemmPartials = 0;
    public const int Strided = 1;        // pointwise stride-2 gather / gradient before scatter
    public const int RowPartials = 2;    // per-chunk partial sums of column reductions
    public const int Statistics = 3;     // batch-norm per-channel sums
    public const int GemmPacked = 4;     // the CPU GEMM's B in panels
    public const int MorePartials = 6;   // a second set of per-core partial sums, read beside RowPartials
    public const int RoundedA = 7;       // a GEMM's operands rounded to TF32 or bf16 where no tensor core multiplies them
    public const int RoundedB = 8;
    // The CPU convolution's im2col columns share the strided 1x1's slot: the two are never live at once, and the
    // columns (4 MB at most) then cost no memory beyond the shortcut's samples (11 MB at 299x299, batch 8).
    public const int Columns = Strided;
}
