using System.CommandLine;

namespace Xception.Gpu.Cli;

/// <summary>--precision, declared and read the same way by every command that runs a model (see <see cref="Precision"/>).</summary>
static class PrecisionOption
{
    public static Option<string[]> Declare() => Choice("precision", ["fp32", "tf32", "bf16"],
        "how the matrix products (pointwise, dense, convolutions) multiply: fp32 (default; Keras' results), tf32 or bf16 " +
        "(operands rounded to the format, fp32 accumulation and storage). On CUDA devices of compute capability 8.0 and " +
        "newer these run on the tensor cores; elsewhere the operands are rounded the same way and multiplied in fp32, " +
        "giving the same accuracy without the speed");

    public static Precision Read(Args a) => a.String("precision", "fp32").ToLowerInvariant() switch
    {
        "fp32" => Precision.Fp32,
        "tf32" => Precision.Tf32,
        "bf16" => Precision.Bf16,
        var p => throw new UsageException($"--precision must be fp32, tf32 or bf16, got '{p}'"),
    };

    /// <summary>A note for the first line a command prints, empty at fp32.</summary>
    public static string Describe(Device d) => d.Precision == Precision.Fp32 ? ""
        : $"; precision {d.Precision.ToString().ToLowerInvariant()} ({(d.HasTensorCores ? "tensor cores" : "operands rounded, multiplied in fp32")})";
}
