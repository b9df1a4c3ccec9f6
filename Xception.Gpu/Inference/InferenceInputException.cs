namespace Xception.Gpu.Inference;

/// <summary>
/// A call the model cannot serve as asked: a value that is not finite, a class or layer it does not have, an image
/// count or batch below one, images for a model that does not take RGB, a feature call on a classifier.
/// Wrong tensor sizes are <see cref="ShapeException"/>s, unreadable images <see cref="Imaging.ImageException"/>s.
/// </summary>
public sealed class InferenceInputException(string message) : XceptionException(message);
