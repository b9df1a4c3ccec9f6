using System.Numerics;
using Xception.Gpu.Data;
using Xunit;

namespace Xception.Gpu.Tests.Data;

/// <summary>The built-in synthetic data set: deterministic, balanced, and with classes that really differ.</summary>
public class SyntheticSourceTests
{
    [Fact]
    public void DeterministicPerSeedAndIndex()
    {
        var a = new SyntheticSource(50, seed: 7);
        var b = new SyntheticSource(50, seed: 7);
        var c = new SyntheticSource(50, seed: 8);
        for (int i = 0; i < 50; i += 7)
        {
            var x = a.Load(i);
            Assert.Equal(x.Pixels, b.Load(i).Pixels);
            Assert.Equal(x.Pixels, a.Load(i).Pixels);
            Assert.NotEqual(x.Pixels, c.Load(i).Pixels);
            Assert.Equal((32, 32, 3, i % 10), (x.Width, x.Height, x.Channels, x.Label));
        }
        // A sample does not depend on the data set's size: synthetic:N and synthetic:M share their first images.
        Assert.Equal(a.Load(3).Pixels, new SyntheticSource(5, seed: 7).Load(3).Pixels);
        var small = new SyntheticSource(4, classes: 3, size: 12);
        Assert.Equal(["vertical-bars", "horizontal-bars", "diagonal-bars"], small.ClassNames);
        Assert.Equal((12, 12, 0), (small.Load(3).Width, small.Load(3).Height, small.Load(3).Label));
    }

    [Fact]
    public void BadArguments()
    {
        Assert.Equal("synthetic: image count 0 is not positive", Assert.Throws<OpArgumentException>(() => new SyntheticSource(0)).Message);
        Assert.Equal("synthetic: 11 classes; expected 1 to 10", Assert.Throws<OpArgumentException>(() => new SyntheticSource(5, classes: 11)).Message);
        Assert.Equal("synthetic: image size 4; expected at least 8", Assert.Throws<OpArgumentException>(() => new SyntheticSource(5, size: 4)).Message);
    }

    /// <summary>
    /// The classes differ in shape, not in colour or place: a nearest-centroid classifier on the magnitude of the
    /// 2-D Fourier transform of contrast-normalised gray images (blind to position and colour) separates them far
    /// above chance, while the class mean images, which see only colour and place, are all close to each other.
    /// </summary>
    [Fact]
    public void ClassesDifferInShape()
    {
        const int Train = 600, Test = 300, S = 32;
        var src = new SyntheticSource(Train + Test, seed: 1);
        var features = Enumerable.Range(0, Train + Test).Select(i => Spectrum(src.Load(i).Pixels, S)).ToArray();
        var centroids = new double[10][];
        for (int k = 0; k < 10; k++)
        {
            centroids[k] = new double[S * S];
            for (int i = k; i < Train; i += 10)
                for (int j = 0; j < S * S; j++) centroids[k][j] += features[i][j] / (Train / 10);
        }
        int correct = 0;
        for (int i = Train; i < Train + Test; i++)
        {
            int best = Enumerable.Range(0, 10).MinBy(k => features[i].Zip(centroids[k], (a, b) => (a - b) * (a - b)).Sum());
            if (best == i % 10) correct++;
        }
        double accuracy = (double)correct / Test;
        Assert.True(accuracy > 0.6, $"nearest-centroid accuracy on spectra {accuracy:P0}; expected well above chance (10%)");

        // Mean images per class: every class mean differs from every other, but only a little (colour and place are random).
        var means = new double[10][];
        for (int k = 0; k < 10; k++)
        {
            means[k] = new double[3 * S * S];
            for (int i = k; i < Train; i += 10)
            {
                var p = src.Load(i).Pixels;
                for (int j = 0; j < p.Length; j++) means[k][j] += p[j] / (Train / 10.0);
            }
        }
        for (int a = 0; a < 10; a++)
            for (int b = a + 1; b < 10; b++)
            {
                double rms = Math.Sqrt(means[a].Zip(means[b], (x, y) => (x - y) * (x - y)).Average());
                Assert.True(rms > 0.5, $"classes {a} and {b} have the same mean image (rms difference {rms:F2})");
            }
    }

    /// <summary>|DFT| of the luma, normalised to zero mean and unit variance first, then to unit length.</summary>
    static double[] Spectrum(byte[] rgb, int s)
    {
        var g = new double[s * s];
        for (int i = 0; i < g.Length; i++) g[i] = 0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2];
        double mean = g.Average(), sd = Math.Sqrt(g.Select(v => (v - mean) * (v - mean)).Average()) + 1e-9;
        var f = g.Select(v => new Complex((v - mean) / sd, 0)).ToArray();
        var w = Enumerable.Range(0, s).Select(k => Complex.FromPolarCoordinates(1, -2 * Math.PI * k / s)).ToArray();
        var tmp = new Complex[s * s];
        for (int y = 0; y < s; y++)
            for (int kx = 0; kx < s; kx++)
            {
                Complex sum = 0;
                for (int x = 0; x < s; x++) sum += f[y * s + x] * w[kx * x % s];
                tmp[y * s + kx] = sum;
            }
        var mag = new double[s * s];
        for (int kx = 0; kx < s; kx++)
            for (int ky = 0; ky < s; ky++)
            {
                Complex sum = 0;
                for (int y = 0; y < s; y++) sum += tmp[y * s + kx] * w[ky * y % s];
                mag[ky * s + kx] = sum.Magnitude;
            }
        double norm = Math.Sqrt(mag.Sum(v => v * v)) + 1e-12;
        return mag.Select(v => v / norm).ToArray();
    }
}
