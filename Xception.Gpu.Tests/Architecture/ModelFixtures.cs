using Xception.Gpu.Graph;

namespace Xception.Gpu.Tests.Architecture;

static class ModelFixtures
{
    /// <summary>
    /// Random weights, plus batch-norm statistics and gammas away from their defaults, so that a wrong
    /// normalization or a swapped parameter shows in the output.
    /// </summary>
    public static void Randomize(Model m, int seed)
    {
        m.Initialize(seed);
        var r = new Random(seed + 1);
        foreach (var l in m.Layers)
            foreach (var p in l.Parameters)
            {
                if (p.Role is ParameterRole.Gamma or ParameterRole.MovingVariance) p.Set(Enumerable.Range(0, p.Length).Select(_ => (float)(0.5 + r.NextDouble())).ToArray());
                if (p.Role is ParameterRole.Beta or ParameterRole.MovingMean or ParameterRole.Bias) p.Set(Enumerable.Range(0, p.Length).Select(_ => (float)(r.NextDouble() * 0.4 - 0.2)).ToArray());
            }
    }
}
