using System.Runtime.InteropServices;
using Xception.Gpu.Graph;

namespace Xception.Gpu.Parallel;

/// <summary>
/// Whether replicas still hold the same weights: each hashes its own (64-bit FNV-1a over the bits of every
/// parameter's host values) and the hashes are gathered by an all-reduce, so every process sees all of them.
/// </summary>
public static class ReplicaChecksum
{
    /// <summary>64-bit FNV-1a over the bits of every parameter's host values.</summary>
    public static ulong Of(Model m)
    {
        ulong h = 14695981039346656037UL;
        foreach (var p in m.Parameters)
            foreach (uint bits in MemoryMarshal.Cast<float, uint>(p.Host))
            {
                h ^= bits;
                h *= 1099511628211UL;
            }
        return h;
    }

    /// <summary>
    /// Every member's checksum, gathered over <paramref name="member"/>'s group of <paramref name="size"/>: each
    /// writes its own in its slots (two halves, exact in doubles) and the sum is the whole table.
    /// </summary>
    public static ulong[] Gather(ICollective member, int size, ulong checksum)
    {
        var slots = new double[2 * size];
        slots[2 * member.Rank] = checksum >> 32;
        slots[2 * member.Rank + 1] = checksum & 0xffffffff;
        member.AllReduceSum(slots);
        return Enumerable.Range(0, size).Select(k => (ulong)slots[2 * k] << 32 | (ulong)slots[2 * k + 1]).ToArray();
    }
}
