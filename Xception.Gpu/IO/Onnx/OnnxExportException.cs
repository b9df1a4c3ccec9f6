namespace Xception.Gpu.IO.Onnx;

/// <summary>A model, or an option, that the ONNX export cannot write. One line, naming the layer or the value.</summary>
public sealed class OnnxExportException(string message, Exception? inner = null) : XceptionException(message, inner);
