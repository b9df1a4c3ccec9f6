namespace Xception.Gpu.Architecture;

/// <summary>
/// The named models a user picks: <c>xception</c> (Keras' Xception, 299 x 299 RGB by default) and
/// <c>xception-mini</c> (<see cref="XceptionConfig.Mini"/>, for 28 x 28 and 32 x 32 images). The one place that turns a
/// name into a configuration.
/// </summary>
public static class ModelPresets
{
    public const string Xception = "xception";
    public const string Mini = "xception-mini";

    /// <summary>The names, the small model first.</summary>
    public static IReadOnlyList<string> Names { get; } = [Mini, Xception];

    /// <summary>Whether <paramref name="name"/> (any case) is a model name.</summary>
    public static bool IsName(string name) => Names.Contains(name.ToLowerInvariant());

    /// <summary>
    /// The configuration of a named model. <paramref name="imageSize"/> null: 299 for xception, 32 for the mini model;
    /// <paramref name="classes"/> null: 1000 for xception (ImageNet), 10 for the mini model. The mini model takes
    /// <paramref name="channels"/> input channels; xception takes RGB, as Keras' does (a gray data set's images are
    /// replicated into three channels when they are loaded).
    /// </summary>
    public static XceptionConfig Config(string name, int? imageSize = null, int channels = 3, int? classes = null) =>
        name.ToLowerInvariant() switch
        {
            Mini => XceptionConfig.Mini(imageSize ?? 32, channels, classes ?? 10),
            Xception => new XceptionConfig { ImageSize = imageSize ?? 299, Classes = classes ?? 1000 },
            _ => throw new ModelConfigException($"unknown model '{name}': expected {string.Join(" or ", Names)}"),
        };
}
