namespace Xception.Gpu.Serving;

/// <summary>
/// A thread-safe histogram with fixed bucket bounds, as Prometheus counts them: each bucket holds the observations
/// at or below its upper bound (cumulative), plus the count and the sum of all observations.
/// </summary>
public sealed class Histogram
{
    readonly double[] bounds;
    readonly long[] counts;   // per bucket, not cumulative; the last is +Inf
    long count;
    long sumBits;

    /// <param name="upperBounds">increasing, finite upper bounds; +Inf is implied</param>
    public Histogram(IReadOnlyList<double> upperBounds)
    {
        if (upperBounds.Count == 0) throw new ArgumentException("a histogram needs at least one bucket", nameof(upperBounds));
        for (int i = 0; i < upperBounds.Count; i++)
            if (!double.IsFinite(upperBounds[i]) || (i > 0 && upperBounds[i] <= upperBounds[i - 1]))
                throw new ArgumentException("bucket bounds must be finite and increasing", nameof(upperBounds));
        bounds = [.. upperBounds];
        counts = new long[bounds.Length + 1];
    }

    public IReadOnlyList<double> UpperBounds => bounds;

    public void Observe(double value)
    {
        int i = Array.BinarySearch(bounds, value);
        if (i < 0) i = ~i; // the first bound above; equal values go into their own bucket (le)
        Interlocked.Increment(ref counts[i]);
        Interlocked.Increment(ref count);
        long seen, next;
        do
        {
            seen = Interlocked.Read(ref sumBits);
            next = BitConverter.DoubleToInt64Bits(BitConverter.Int64BitsToDouble(seen) + value);
        } while (Interlocked.CompareExchange(ref sumBits, next, seen) != seen);
    }

    /// <summary>
    /// The cumulative count of each bucket (the last is +Inf and equals <see cref="Count"/> once no observation is
    /// in flight), the count and the sum.
    /// </summary>
    public (long[] Cumulative, long Count, double Sum) Snapshot()
    {
        var cumulative = new long[counts.Length];
        long running = 0;
        for (int i = 0; i < counts.Length; i++) cumulative[i] = running += Interlocked.Read(ref counts[i]);
        return (cumulative, cumulative[^1], BitConverter.Int64BitsToDouble(Interlocked.Read(ref sumBits)));
    }

    public long Count => Interlocked.Read(ref count);
}
