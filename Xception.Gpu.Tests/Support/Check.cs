using Xunit;

namespace Xception.Gpu.Tests;

/// <summary>
/// One check helper for all ops: device results against a float64 reference, and reference gradients
/// against central differences.
///
/// Tolerances. A float32 sum of K products carries a rounding error of about u * sqrt(K) relative to the
/// result's scale for random-sign data (u = 2^-24 = 6e-8 is float32's unit roundoff; the worst case is
/// u * K). <see cref="ForSum"/> allows 16 u (sqrt(K) + 1), a margin of 16 over the typical error that is still
/// far below what any indexing or padding mistake produces (relative errors of 1e-2 and more).
/// </summary>
public static class Check
{
    const double U = 5.96e-8;

    /// <summary>Relative tolerance for outputs that are float32 sums of <paramref name="k"/> terms.</summary>
    public static double ForSum(long k) => 16 * U * (Math.Sqrt(k) + 1);

    /// <summary>Asserts ||actual - expected|| / ||expected|| &lt;= tol.</summary>
    public static void Close(string what, float[] actual, double[] expected, double tol)
    {
        Assert.True(actual.Length == expected.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        double num = 0, den = 0, worst = 0;
        int at = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            double diff = actual[i] - expected[i];
            if (double.IsNaN(diff)) { worst = double.NaN; at = i; break; }
            num += diff * diff;
            den += expected[i] * expected[i];
            if (Math.Abs(diff) > worst) { worst = Math.Abs(diff); at = i; }
        }
        double rel = Math.Sqrt(num) / Math.Max(Math.Sqrt(den), 1e-30);
        Assert.True(rel <= tol && !double.IsNaN(worst),
            $"{what}: relative error {rel:E2} exceeds {tol:E2}; largest difference {worst:E2} at index {at} " +
            $"(got {(at >= 0 ? actual[at] : 0)}, expected {(at >= 0 ? expected[at] : 0)})");
    }

    /// <summary>Asserts two arrays are identical (for ops with no arithmetic, such as index bookkeeping).</summary>
    public static void Equal<T>(string what, T[] actual, T[] expected) where T : IEquatable<T>
    {
        Assert.True(actual.Length == expected.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        for (int i = 0; i < actual.Length; i++)
            Assert.True(actual[i].Equals(expected[i]), $"{what}: index {i}: got {actual[i]}, expected {expected[i]}");
    }

    /// <summary>
    /// Checks an analytic float64 gradient of the scalar <paramref name="loss"/> at <paramref name="x"/>
    /// by central differences: (L(x + h e_i) - L(x - h e_i)) / 2h on up to <paramref name="samples"/>
    /// coordinates. The truncation error is O(h^2) and the rounding error about 1e-16 / h, both far below
    /// the 1e-6 tolerance at h = 1e-5.
    /// </summary>
    public static void Gradient(string what, Func<double[], double> loss, double[] x, double[] analytic,
        int samples = 48, int seed = 7)
    {
        Assert.Equal(x.Length, analytic.Length);
        var rnd = new Random(seed);
        var idx = x.Length <= samples ? Enumerable.Range(0, x.Length) : Enumerable.Range(0, samples).Select(_ => rnd.Next(x.Length));
        const double h = 1e-5;
        foreach (int i in idx)
        {
            var xp = (double[])x.Clone(); xp[i] += h;
            var xm = (double[])x.Clone(); xm[i] -= h;
            double numeric = (loss(xp) - loss(xm)) / (2 * h);
            double err = Math.Abs(numeric - analytic[i]);
            Assert.True(err <= 1e-6 * (1 + Math.Abs(numeric)),
                $"{what}: gradient at {i}: analytic {analytic[i]:G10}, central difference {numeric:G10}");
        }
    }

    /// <summary>Sum of r[i] * y[i]: a random linear loss whose gradient with respect to y is r.</summary>
    public static double Dot(double[] r, double[] y)
    {
        double s = 0;
        for (int i = 0; i < r.Length; i++) s += r[i] * y[i];
        return s;
    }
}

/// <summary>Deterministic test data.</summary>
public static class TestData
{
    /// <summary>Uniform values in [lo, hi), float32-representable so the reference sees the same inputs.</summary>
    public static float[] Uniform(int n, int seed, float lo = -1f, float hi = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)r.NextDouble();
        return a;
    }

    /// <summary>
    /// Distinct values at least 1/n apart, away from 0 by at least 0.5/n: keeps max-pool ties and ReLU kinks
    /// out of reach of the finite-difference step.
    /// </summary>
    public static float[] Distinct(int n, int seed)
    {
        var r = new Random(seed);
        var order = Enumerable.Range(0, n).OrderBy(_ => r.Next()).ToArray();
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (order[i] + 0.5f - n / 2f) / n * 2f;
        return a;
    }

    public static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);
    public static float[] F(double[] a) => Array.ConvertAll(a, v => (float)v);
}
