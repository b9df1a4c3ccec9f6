namespace Xception.Gpu.IO;

/// <summary>
/// An array read from a .npy file, converted to float32 and kept in C (row-major) order: the layout the
/// tensors of this library use, so <see cref="Data"/> can be uploaded as it is.
/// </summary>
/// <param name="Data">The values, last dimension fastest.</param>
/// <param name="Shape">The dimensions; empty for a 0-d (scalar) array, which holds one value.</param>
public sealed record NpyArray(float[] Data, int[] Shape);
