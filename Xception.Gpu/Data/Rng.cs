namespace Xception.Gpu.Data;

/// <summary>
/// A small deterministic random generator (SplitMix64) and the hash that seeds it. The data pipeline seeds one
/// generator per decision from a hash of everything the decision depends on (seed, epoch, sample index), never
/// from shared state, so the result does not depend on which thread ran first. System.Random is not used: its
/// seeded sequence is an implementation detail of .NET, and reproducibility across versions matters for resume.
/// </summary>
internal struct Rng
{
    ulong state;

    public Rng(ulong seed) => state = seed;

    /// <summary>A generator for the key (a, b, c) within a purpose (<paramref name="salt"/>).</summary>
    public static Rng For(ulong salt, long a, long b = 0, long c = 0) => new(Hash(salt, a, b, c));

    /// <summary>Mixes the parts one after another through SplitMix64's finalizer; different keys give unrelated values.</summary>
    public static ulong Hash(ulong salt, long a, long b = 0, long c = 0)
    {
        ulong h = Mix(salt ^ 0x9E3779B97F4A7C15UL);
        h = Mix(h ^ (ulong)a);
        h = Mix(h ^ (ulong)b);
        return Mix(h ^ (ulong)c);
    }

    static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextU64() => Mix(state += 0x9E3779B97F4A7C15UL);

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextU64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [lo, hi).</summary>
    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();

    /// <summary>Uniform integer in [0, n), n &gt; 0 (multiply-shift; the bias is below 2^-32 for any int n).</summary>
    public int Next(int n) => (int)(((NextU64() >> 32) * (ulong)n) >> 32);

    /// <summary>A standard normal value (Box-Muller).</summary>
    public double Normal()
    {
        double u = 1.0 - NextDouble(), v = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u)) * Math.Cos(2.0 * Math.PI * v);
    }

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle(int[] a)
    {
        for (int i = a.Length - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (a[i], a[j]) = (a[j], a[i]);
        }
    }

    /// <summary>Salts that keep the pipeline's random streams apart.</summary>
    public const ulong SplitSalt = 0x5B1E_0001, EpochSalt = 0x5B1E_0002, AugmentSalt = 0x5B1E_0003, SyntheticSalt = 0x5B1E_0004,
        SubsetSalt = 0x5B1E_0005;
}
