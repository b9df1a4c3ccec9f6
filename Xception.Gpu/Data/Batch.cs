namespace Xception.Gpu.Data;

/// <summary>
/// One batch of model input. Samples whose image could not be decoded are left out (when the loader is not
/// strict), so <see cref="Count"/> can be below the batch size; every array holds exactly Count samples.
/// The arrays belong to the caller: the loader never reuses them.
/// </summary>
/// <param name="Index">The batch's position in the epoch (0-based).</param>
/// <param name="Count">Samples in the batch.</param>
/// <param name="X">Count x size x size x channels floats, NHWC, Keras 'tf' preprocessed (in [-1, 1]).</param>
/// <param name="Labels">Class index per sample for single-label data; empty for multi-label data.</param>
/// <param name="Targets">Count x classes 0/1 targets for multi-label data; null for single-label data.</param>
/// <param name="Indices">The source index of each sample, for logging and debugging.</param>
public sealed record Batch(int Index, int Count, float[] X, int[] Labels, float[]? Targets, int[] Indices);
