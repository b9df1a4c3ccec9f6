namespace Xception.Gpu.Runtime;

/// <summary>
/// How a device multiplies in its matrix products (the GEMMs of the pointwise and dense layers and of the regular
/// convolutions, forward and backward). Storage, the accumulation, batch norm, activations, softmax and the loss stay
/// fp32 at every setting, and so do the weights a checkpoint keeps.
/// </summary>
public enum Precision
{
    /// <summary>fp32 operands and accumulation: the results Keras gives.</summary>
    Fp32,

    /// <summary>
    /// Operands rounded to TF32 (10 mantissa bits, round to nearest, ties away), products accumulated in fp32: what
    /// PyTorch's convolutions do on NVIDIA GPUs by default. About 1e-3 relative error on a product over thousands of terms.
    /// </summary>
    Tf32,

    /// <summary>
    /// Operands rounded to bfloat16 (7 mantissa bits, round to nearest even), products accumulated in fp32: the matrix
    /// products of bf16 mixed-precision training, with fp32 master weights. About 1e-2 relative error.
    /// </summary>
    Bf16,
}
