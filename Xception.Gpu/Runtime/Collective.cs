namespace Xception.Gpu.Runtime;

/// <summary>
/// Collective operations among the replicas of a data-parallel run. Every replica calls the same operations
/// in the same order; each call returns when all have made it.
/// </summary>
/// <remarks>
/// It lives in Runtime, below everything else, because both ends need it: the graph's executor hands it to
/// synchronized batch norm, and the data-parallel layer (far above the graph) implements it.
/// </remarks>
public interface ICollective
{
    /// <summary>This member's index among all members (0 to <see cref="Size"/> - 1).</summary>
    int Rank { get; }

    /// <summary>Members in the collective.</summary>
    int Size { get; }

    /// <summary>Replaces <paramref name="data"/> with its element-wise sum over all replicas, identical on all.</summary>
    void AllReduceSum(float[] data);

    /// <inheritdoc cref="AllReduceSum(float[])"/>
    void AllReduceSum(double[] data);
}
