using Xception.Gpu.Architecture;

namespace Xception.Gpu.IO.Onnx;

/// <summary>How <see cref="OnnxExport"/> writes a model.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>The opset written when none is asked for.</summary>
    public const int DefaultOpset = 17;

    /// <summary>The lowest opset accepted: every operator the export writes has had its current form since 13.</summary>
    public const int MinOpset = 13;

    /// <summary>The highest opset accepted (tested with ONNX Runtime 1.31).</summary>
    public const int MaxOpset = 21;

    /// <summary>ONNX operator set version of the default domain (<see cref="MinOpset"/> to <see cref="MaxOpset"/>).</summary>
    public int Opset { get; init; } = DefaultOpset;

    /// <summary>
    /// A fixed batch size, or null (the default) for a symbolic one (<c>dim_param "batch"</c>), as Keras' own
    /// input shape <c>(None, H, W, C)</c> leaves it open.
    /// </summary>
    public int? Batch { get; init; }

    /// <summary>
    /// Height and width symbolic (<c>dim_param "height"</c>, <c>"width"</c>) instead of the model's image size:
    /// 'same' convolutions and pools then pad with <c>auto_pad SAME_UPPER</c>, which puts the odd pixel after, as
    /// TensorFlow does; fixed sizes get the same pads written out. The model still needs Keras' minimum size.
    /// </summary>
    public bool DynamicSize { get; init; }

    /// <summary>
    /// Output the classifier's logits instead of its softmax probabilities (Keras' <c>predictions</c> applies the
    /// softmax). No effect on a model without a classifier, whose output is its pooled features or feature maps.
    /// </summary>
    public bool Logits { get; init; }

    /// <summary>
    /// The model's configuration, written into the file's doc string and its metadata (<c>xception_gpu_config</c>);
    /// optional.
    /// </summary>
    public XceptionConfig? Config { get; init; }

    /// <summary>These options when every value is in range; otherwise an <see cref="OnnxExportException"/> naming it.</summary>
    public OnnxExportOptions Validate()
    {
        if (Opset is < MinOpset or > MaxOpset)
            throw new OnnxExportException($"ONNX opset {Opset} is not supported: expected {MinOpset} to {MaxOpset} (default {DefaultOpset})");
        if (Batch is < 1)
            throw new OnnxExportException($"the batch size of the ONNX input must be at least 1, got {Batch}");
        return this;
    }
}
