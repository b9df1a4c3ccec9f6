using Xception.Gpu.Architecture;
using Xception.Gpu.Ops;

namespace Xception.Gpu.Studies;

/// <summary>One variant of a study: its name (folder and legend) and its model.</summary>
public sealed record StudyVariant(string Name, XceptionConfig Config);

/// <summary>The variants each study compares, on a base model.</summary>
public static class StudyVariants
{
    /// <summary>
    /// The variants of <paramref name="s"/>'s study on <paramref name="baseConfig"/>; a segment count that does not divide
    /// the input channels of every separable layer is a <see cref="StudySettingException"/> naming the valid ones.
    /// </summary>
    public static IReadOnlyList<StudyVariant> Of(StudySettings s, XceptionConfig baseConfig) => s.Study switch
    {
        "residual" => [new("residual", baseConfig with { Residual = true }), new("no-residual", baseConfig with { Residual = false })],
        "activation" => [new("none", baseConfig with { SeparableActivation = ActivationKind.None }),
                         new("relu", baseConfig with { SeparableActivation = ActivationKind.Relu }),
                         new("elu", baseConfig with { SeparableActivation = ActivationKind.Elu })],
        "segments" => s.Segments.Select(k => new StudyVariant(k == 0 ? "depthwise" : $"segments-{k}", Segmented(baseConfig, k, s.Model))).ToList(),
        _ => throw new StudySettingException("study", $"'{s.Study}' is not a study; studies: {string.Join(", ", StudySettings.Names)}"),
    };

    static XceptionConfig Segmented(XceptionConfig c, int k, string model)
    {
        var inputs = c.SeparableInputs().Distinct().ToList();
        if (k == 0 || inputs.All(ch => ch % k == 0)) return c with { Segments = k };
        int gcd = inputs.Aggregate(0, (g, ch) => (int)System.Numerics.BigInteger.GreatestCommonDivisor(g, ch));
        var valid = Enumerable.Range(1, gcd).Where(d => gcd % d == 0);
        throw new StudySettingException("segments", $"{k} does not divide the input channels of every separable layer of {model} " +
                                                    $"({string.Join(", ", inputs)}); valid values: {string.Join(", ", valid)}, and 0 (depthwise)");
    }
}
