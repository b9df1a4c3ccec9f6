using System.Text.Json;
using System.Text.Json.Serialization;
using Xception.Gpu.Ops;

namespace Xception.Gpu.Models;

/// <summary>Pooling after the exit flow when the classifier is left out (Keras' <c>pooling</c> argument).</summary>
public enum Pooling { None, Avg, Max }

/// <summary>
/// Everything that defines an Xception graph, with Keras' defaults. Immutable; <see cref="Validate"/>
/// echoes any value out of range.
/// </summary>
public sealed record XceptionConfig
{
    /// <summary>Output classes of the classifier (Keras: classes).</summary>
    public int Classes { get; init; } = 1000;

    /// <summary>Square input size in pixels; at least 71 (Keras' minimum).</summary>
    public int ImageSize { get; init; } = 299;

    /// <summary>Input channels (3 for RGB).</summary>
    public int InputChannels { get; init; } = 3;

    /// <summary>Global average pooling and the Dense classifier at the end (Keras: include_top).</summary>
    public bool IncludeTop { get; init; } = true;

    /// <summary>Pooling when <see cref="IncludeTop"/> is false.</summary>
    public Pooling Pooling { get; init; } = Pooling.None;

    /// <summary>Residual blocks in the middle flow (8 in the paper).</summary>
    public int MiddleBlocks { get; init; } = 8;

    /// <summary>Residual connections (the paper's section 4.6 turns them off).</summary>
    public bool Residual { get; init; } = true;

    /// <summary>Activation between the depthwise and the pointwise convolution (section 4.7; none in Xception).</summary>
    public ActivationKind SeparableActivation { get; init; } = ActivationKind.None;

    /// <summary>
    /// Channel segments of the spatial convolutions: 0 is depthwise (one segment per channel, Xception),
    /// 1 a regular 3x3 convolution (Inception-like), anything between a grouped convolution.
    /// </summary>
    public int Segments { get; init; }

    /// <summary>Dropout rate before the classifier (the paper's ImageNet recipe uses 0.5; 0 leaves it out).</summary>
    public float Dropout { get; init; }

    /// <summary>Input channels of every separable convolution (the spatial part works on these).</summary>
    public IEnumerable<int> SeparableInputs()
    {
        int[] entry = [64, 128, 128, 256, 256, 728];
        foreach (var c in entry) yield return c;
        if (MiddleBlocks > 0) yield return 728;
        foreach (var c in new[] { 728, 728, 1024, 1536 }) yield return c;
    }

    public XceptionConfig Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok) throw new XceptionException($"invalid Xception configuration: {message}");
        }
        Check(Classes >= 1, $"classes must be at least 1, got {Classes}");
        Check(ImageSize >= 71, $"image size must be at least 71 (Keras' minimum for Xception), got {ImageSize}");
        Check(ImageSize <= 8192, $"image size must be at most 8192, got {ImageSize}");
        Check(InputChannels >= 1, $"input channels must be at least 1, got {InputChannels}");
        Check(MiddleBlocks is >= 0 and <= 64, $"middle-flow blocks must be between 0 and 64, got {MiddleBlocks}");
        Check(Dropout is >= 0 and < 1, $"dropout must be in [0, 1), got {Dropout}");
        Check(Segments >= 0, $"segments must be 0 (depthwise) or positive, got {Segments}");
        if (Segments > 0)
        {
            var bad = SeparableInputs().Distinct().Where(c => c % Segments != 0).ToList();
            Check(bad.Count == 0, $"segments {Segments} must divide the input channels of every separable convolution (64, 128, 256, 728, 1024, 1536); it does not divide {string.Join(", ", bad)}");
        }
        return this;
    }

    static readonly JsonSerializerOptions Json = new() { Converters = { new JsonStringEnumConverter() } };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static XceptionConfig FromJson(string json) =>
        (JsonSerializer.Deserialize<XceptionConfig>(json, Json) ?? throw new XceptionException("empty model configuration")).Validate();
}
