using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Xception.Gpu.Tests.IO;

/// <summary>Runs an exported model with ONNX Runtime (CPU execution provider): the consumer the export is for.</summary>
internal static class OnnxRun
{
    /// <summary>The model's single output for NHWC input <paramref name="x"/> of <paramref name="shape"/>, and its dimensions.</summary>
    public static (float[] Y, int[] Shape) Run(byte[] model, float[] x, int[] shape)
    {
        using var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        using var session = new InferenceSession(model, options);
        var input = session.InputMetadata.Keys.Single();
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(input, new DenseTensor<float>(x, shape))]);
        var y = results.Single().AsTensor<float>();
        return (y.ToArray(), y.Dimensions.ToArray());
    }

    /// <summary>||actual - expected|| / ||expected|| and the largest |difference| over max |expected|.</summary>
    public static (double Norm, double Max) RelativeError(float[] actual, float[] expected)
    {
        double num = 0, den = 0, worst = 0, scale = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = actual[i] - (double)expected[i];
            num += d * d;
            den += expected[i] * (double)expected[i];
            worst = Math.Max(worst, Math.Abs(d));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        return (Math.Sqrt(num / Math.Max(den, 1e-300)), worst / Math.Max(scale, 1e-300));
    }
}
