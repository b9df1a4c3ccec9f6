namespace Xception.Gpu.IO;

/// <summary>A weight file that does not fit the model, or is not a weight file at all. One line, naming the layer.</summary>
public sealed class WeightsException(string message, Exception? inner = null) : XceptionException(message, inner);
