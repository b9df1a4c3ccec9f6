using System.Text.Json;
using System.Text.Json.Serialization;
using Xception.Gpu.Ops;

namespace Xception.Gpu.Architecture;

/// <summary>Pooling after the exit flow when the classifier is left out (Keras' <c>pooling</c> argument).</summary>
public enum GlobalPooling { None, Avg, Max }

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
    public GlobalPooling Pooling { get; init; } = GlobalPooling.None;

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

    /// <summary>
    /// Channel multiplier of every layer (1 is Xception). Widths are rounded to a multiple of 8, at least 8.
    /// </summary>
    public float Width { get; init; } = 1f;

    /// <summary>
    /// Momentum of the batch-norm moving statistics (Keras' 0.99, <see cref="BatchNorm.DefaultMomentum"/>). The moving statistics reach their
    /// batch values only after a few hundred steps at 0.99, so short runs evaluate poorly with it; the small
    /// preset uses 0.9.
    /// </summary>
    public float BatchNormMomentum { get; init; } = BatchNorm.DefaultMomentum;

    /// <summary>Stride of block1_conv1 (2 in Xception; 1 keeps small images such as 28 x 28 large enough).</summary>
    public int EntryStride { get; init; } = 2;

    /// <summary>True for Keras' Xception shape (full width, entry stride 2), which Keras allows from 71 pixels.</summary>
    [JsonIgnore]
    public bool IsStandard => Width == 1f && EntryStride == 2;

    /// <summary>Xception's channel count <paramref name="baseWidth"/> scaled by <see cref="Width"/>.</summary>
    public int Channels(int baseWidth) => Width == 1f ? baseWidth : Math.Max(8, (int)Math.Round(baseWidth * Width / 8.0) * 8);

    /// <summary>
    /// The small-image preset ("xception-mini"): the same entry, middle and exit flows at a quarter of the
    /// width, four middle blocks and a stride-1 first convolution, for 28 x 28 and 32 x 32 inputs.
    /// </summary>
    public static XceptionConfig Mini(int imageSize = 32, int inputChannels = 3, int classes = 10) => new()
    {
        ImageSize = imageSize, InputChannels = inputChannels, Classes = classes,
        Width = 0.25f, EntryStride = 1, MiddleBlocks = 4, BatchNormMomentum = 0.9f,
    };

    /// <summary>Spatial size after the exit flow's pool (at least 1 for a valid configuration); see <see cref="XceptionPlan.ExitSize"/>.</summary>
    public int ExitSize() => XceptionPlan.Of(this).ExitSize(ImageSize);

    /// <summary>Input channels of every separable convolution, in order (the spatial part works on these).</summary>
    public IEnumerable<int> SeparableInputs() => XceptionPlan.Of(this).SeparableInputs();

    /// <summary>This configuration when every value is in range; otherwise an XceptionException naming the first that is not.</summary>
    public XceptionConfig Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok) throw new ModelConfigException($"invalid Xception configuration: {message}");
        }
        Check(Enum.IsDefined(Pooling), $"pooling must be one of {string.Join(", ", Enum.GetNames<GlobalPooling>())}, got {(int)Pooling}");
        Check(Enum.IsDefined(SeparableActivation), $"separable activation must be one of {string.Join(", ", Enum.GetNames<ActivationKind>())}, got {(int)SeparableActivation}");
        Check(Classes >= 1, $"classes must be at least 1, got {Classes}");
        Check(Width is > 0 and <= 4, $"width multiplier must be in (0, 4], got {Width}");
        Check(BatchNormMomentum is >= 0 and < 1, $"batch-norm momentum must be in [0, 1), got {BatchNormMomentum}");
        Check(EntryStride is 1 or 2, $"entry stride must be 1 or 2, got {EntryStride}");
        if (IsStandard) Check(ImageSize >= 71, $"image size must be at least 71 (Keras' minimum for Xception), got {ImageSize}");
        else Check(ImageSize >= 5 && ExitSize() >= 1, $"image size {ImageSize} is too small for entry stride {EntryStride}");
        Check(ImageSize <= 8192, $"image size must be at most 8192, got {ImageSize}");
        Check(InputChannels >= 1, $"input channels must be at least 1, got {InputChannels}");
        Check(MiddleBlocks is >= 0 and <= 64, $"middle-flow blocks must be between 0 and 64, got {MiddleBlocks}");
        Check(Dropout is >= 0 and < 1, $"dropout must be in [0, 1), got {Dropout}");
        Check(Segments >= 0, $"segments must be 0 (depthwise) or positive, got {Segments}");
        if (Segments > 0)
        {
            var bad = SeparableInputs().Distinct().Where(c => c % Segments != 0).ToList();
            Check(bad.Count == 0, $"segments {Segments} must divide the input channels of every separable convolution ({string.Join(", ", SeparableInputs().Distinct())}); it does not divide {string.Join(", ", bad)}");
        }
        return this;
    }

    // Enums as names only: a number would name no member and build a graph nobody described. A property
    // given twice is refused rather than letting the last one win silently.
    static readonly JsonSerializerOptions Json = new()
    {
        Converters = { new JsonStringEnumConverter(allowIntegerValues: false) },
        AllowDuplicateProperties = false,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads <see cref="ToJson"/>'s text; anything that is not a valid configuration is one XceptionException line.</summary>
    public static XceptionConfig FromJson(string json)
    {
        XceptionConfig? c;
        try
        {
            c = JsonSerializer.Deserialize<XceptionConfig>(json, Json);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException or ArgumentException)
        {
            // System.Text.Json's message names the property (its JSON path) and the position; it can span lines.
            var why = string.Concat(e.Message.Select(ch => char.IsControl(ch) ? ' ' : ch));
            throw new ModelConfigException($"the model configuration is not valid JSON for XceptionConfig: {why}", e);
        }
        return (c ?? throw new ModelConfigException("the model configuration is empty (JSON null)")).Validate();
    }
}
