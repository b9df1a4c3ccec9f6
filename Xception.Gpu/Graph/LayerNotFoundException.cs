namespace Xception.Gpu.Graph;

/// <summary>A layer was asked for by a name (or as an object) that the model does not hold.</summary>
public sealed class LayerNotFoundException(string layer, string message) : XceptionException(message)
{
    /// <summary>The layer's name as asked for.</summary>
    public string Layer { get; } = layer;
}
