using System.Buffers.Binary;
using Xunit;

namespace Xception.Gpu.Tests;

/// <summary>
/// Seeded mutation fuzzing of a file parser. Each case takes a valid file and damages it one to three times
/// (bit flips, random bytes, truncation, a run of bytes cut out or duplicated, a 16/32/64-bit field set to an
/// extreme); the parser must then either succeed or throw its own clear error (a one-line
/// <see cref="XceptionException"/>), never another exception type, never run past a time bound, and never
/// allocate more managed memory than a small multiple of the file (plus what a stated limit allows).
/// A failure names the seed and case, so <c>Mutate(valid, new Random(seed + case))</c> reproduces it.
/// </summary>
internal static class Fuzz
{
    /// <summary>What the fuzz run saw: how many mutants parsed, how many were refused, and the slowest case.</summary>
    public sealed record Report(int Parsed, int Refused, TimeSpan Slowest, long MostAllocated);

    public static Report Run(string parser, byte[] valid, int cases, int seed, Action<byte[]> parse,
        long maxAllocatedBytes, TimeSpan? maxTimePerCase = null)
    {
        var limit = maxTimePerCase ?? TimeSpan.FromSeconds(10);
        int parsed = 0, refused = 0;
        var slowest = TimeSpan.Zero;
        long most = 0;
        for (int c = 0; c < cases; c++)
        {
            var mutant = Mutate(valid, new Random(seed + c));
            long allocated = 0;
            Exception? error = null;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var task = Task.Factory.StartNew(() =>
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                try { parse(mutant); }
                catch (Exception e) { error = e; }
                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            }, TaskCreationOptions.LongRunning);
            if (!task.Wait(limit))
                Assert.Fail($"{parser}: case {c} (seed {seed + c}) ran longer than {limit.TotalSeconds} s: a hang");
            var took = clock.Elapsed;
            if (took > slowest) slowest = took;
            most = Math.Max(most, allocated);
            if (allocated > maxAllocatedBytes)
                Assert.Fail($"{parser}: case {c} (seed {seed + c}, {mutant.Length} bytes) allocated {allocated:N0} bytes, more than the bound {maxAllocatedBytes:N0}");
            if (error is null) { parsed++; continue; }
            if (error is not XceptionException || error.Message.Contains('\n') || error.Message.Length == 0)
                Assert.Fail($"{parser}: case {c} (seed {seed + c}) threw {error.GetType().Name} instead of a clear error: {error}");
            refused++;
        }
        return new Report(parsed, refused, slowest, most);
    }

    /// <summary>One to three damages of a copy of <paramref name="valid"/>.</summary>
    public static byte[] Mutate(byte[] valid, Random rnd)
    {
        var b = (byte[])valid.Clone();
        int damages = 1 + rnd.Next(3);
        for (int d = 0; d < damages && b.Length > 0; d++)
        {
            // Headers hold the fields that matter most: aim half of the damage at the first 64 bytes.
            int at = rnd.Next(2) == 0 ? rnd.Next(Math.Min(b.Length, 64)) : rnd.Next(b.Length);
            switch (rnd.Next(7))
            {
                case 0: b[at] ^= (byte)(1 << rnd.Next(8)); break;
                case 1: b[at] = (byte)rnd.Next(256); break;
                case 2: Array.Resize(ref b, rnd.Next(b.Length)); break;
                case 3: b = [.. b.AsSpan(0, at), .. b.AsSpan(Math.Min(b.Length, at + 1 + rnd.Next(16)))]; break;
                case 4: b = [.. b.AsSpan(0, at), .. b.AsSpan(at, Math.Min(b.Length - at, 1 + rnd.Next(16))), .. b.AsSpan(at)]; break;
                default: Extreme(b, at, rnd); break;
            }
        }
        return b;
    }

    /// <summary>A length-like field set to 0, 1, the largest or the smallest value, in either byte order.</summary>
    static void Extreme(byte[] b, int at, Random rnd)
    {
        int width = new[] { 2, 4, 8 }[rnd.Next(3)];
        if (at + width > b.Length) return;
        ulong value = rnd.Next(5) switch
        {
            0 => 0,
            1 => 1,
            2 => ulong.MaxValue,
            3 => width == 8 ? long.MaxValue : width == 4 ? int.MaxValue : (ulong)short.MaxValue,
            _ => width == 8 ? 1UL << 40 : width == 4 ? 1UL << 30 : 1UL << 15,
        };
        var span = b.AsSpan(at, width);
        bool big = rnd.Next(2) == 0;
        switch (width)
        {
            case 2: if (big) BinaryPrimitives.WriteUInt16BigEndian(span, (ushort)value); else BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)value); break;
            case 4: if (big) BinaryPrimitives.WriteUInt32BigEndian(span, (uint)value); else BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)value); break;
            default: if (big) BinaryPrimitives.WriteUInt64BigEndian(span, value); else BinaryPrimitives.WriteUInt64LittleEndian(span, value); break;
        }
    }
}
