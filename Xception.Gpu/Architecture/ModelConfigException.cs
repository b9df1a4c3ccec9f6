namespace Xception.Gpu.Architecture;

/// <summary>A model configuration that cannot be built: an unknown model name, a value out of range, or configuration JSON that does not parse.</summary>
public sealed class ModelConfigException(string message, Exception? inner = null) : XceptionException(message, inner);
