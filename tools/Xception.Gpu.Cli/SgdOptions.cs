using System.CommandLine;

namespace Xception.Gpu.Cli;

/// <summary>--lr, --momentum and --weight-decay: declared once, read with the same ranges by train and study.</summary>
static class SgdOptions
{
    public static IEnumerable<Option> Group =>
    [
        Value("lr", "L", "base learning rate (default 0.05)"),
        Value("momentum", "M", "SGD momentum (default 0.9)"),
        Value("weight-decay", "W", "L2 on kernels (adds W x w to the gradient; default 0)"),
    ];

    public static double LearningRate(Args a, double fallback) => a.Double("lr", fallback, 1e-12, 1e38);

    public static double Momentum(Args a, double fallback) => a.Double("momentum", fallback, 0, 0.9999);

    public static double WeightDecay(Args a, double fallback) => a.Double("weight-decay", fallback, 0, 1);
}
