using System.Runtime.InteropServices;
using Xception.Gpu.Graph;

namespace Xception.Gpu.Parallel;

/// <summary>Checking that the replicas still hold the same weights.</summary>
public sealed partial class DataParallel
{
    /// <summary>
    /// Checks that every replica, in every process, holds the same weights and statistics bit for bit: each
    /// hashes its own (64-bit FNV-1a over the float bits) and the hashes are gathered by an all-reduce. A
    /// mismatch means the replicas drifted apart: an error, never silently averaged away.
    /// </summary>
    public void VerifyIdentical()
    {
        if (GlobalCount == 1) return;
        var gathered = new double[Count][];
        RunOnReplicas(rank =>
        {
            var m = replicas[rank].Model;
            m.SyncToHost();
            ulong h = Checksum(m);
            var member = group.Member(rank);
            var slots = new double[2 * GlobalCount];
            slots[2 * member.Rank] = h >> 32;
            slots[2 * member.Rank + 1] = h & 0xffffffff;
            member.AllReduceSum(slots);
            gathered[rank] = slots;
        });
        var all = gathered[0];
        for (int k = 1; k < GlobalCount; k++)
            if (all[2 * k] != all[0] || all[2 * k + 1] != all[1])
            {
                int process = k / Count, local = k % Count;
                string where = processes is null ? $"{replicas[local].Device.Id}" : $"process {process}, local replica {local}";
                throw new XceptionException($"replica {k} ({where}) drifted from replica 0: its weights differ (checksum {Hex(all, k)} vs {Hex(all, 0)}); the replicas are no longer in sync");
            }

        static string Hex(double[] s, int k) => $"{(ulong)s[2 * k] << 32 | (ulong)s[2 * k + 1]:x16}";
    }

    /// <summary>64-bit FNV-1a over the bits of every parameter's host values.</summary>
    public static ulong Checksum(Model m)
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
}
