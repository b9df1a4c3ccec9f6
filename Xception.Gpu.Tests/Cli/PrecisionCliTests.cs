using System.Globalization;
using System.Text.RegularExpressions;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Cli;

/// <summary>--precision on the commands: bf16 training reaches fp32's accuracy, and a wrong word is one line.</summary>
public class PrecisionCliTests
{
    static double ValidationAccuracy(string output) =>
        double.Parse(Regex.Match(output, @"validation accuracy: ([0-9.]+) ?%").Groups[1].Value, CultureInfo.InvariantCulture);

    /// <summary>
    /// 1,500 synthetic images (150 held out), 4 epochs, the same seed: fp32 reaches about 95%. With 150 validation
    /// images a run's accuracy has a standard error of about 1.8 points near 95%, so two runs that learn equally well
    /// differ by less than 6 points (2.4 standard errors of the difference) but for 1 time in 60.
    /// </summary>
    [Fact]
    public void Bf16TrainingReachesTheFp32AccuracyWithinNoise()
    {
        using var tmp = new TempDir();
        string[] Run(string precision) => ["train", "--data", "synthetic:1500", "--epochs", "4", "--device", "cpu", "--precision", precision, "--checkpoint-dir", tmp[precision]];
        var (code, fp32) = CliRun.Run(Run("fp32"));
        Assert.True(code == 0, fp32);
        (code, var bf16) = CliRun.Run(Run("bf16"));
        Assert.True(code == 0, bf16);
        Assert.Contains("precision bf16 (operands rounded, multiplied in fp32)", bf16);
        double a = ValidationAccuracy(fp32), b = ValidationAccuracy(bf16);
        TestContext.Current.SendDiagnosticMessage($"validation accuracy: fp32 {a:F2}%, bf16 {b:F2}%");
        Assert.True(a >= 85 && b >= 85, $"fp32 {a}%, bf16 {b}%: the runs did not learn");
        Assert.True(Math.Abs(a - b) < 6, $"fp32 {a}%, bf16 {b}%: further apart than noise");
    }

    [Theory]
    [InlineData("train")]
    [InlineData("eval", "--weights", "w.h5", "--data", "synthetic:8")]
    [InlineData("predict", "--weights", "w.h5", "x.png")]
    [InlineData("features", "--weights", "w.h5", "--output", "f.npy", "x.png")]
    [InlineData("explain", "--weights", "w.h5", "x.png")]
    [InlineData("bench")]
    [InlineData("study", "residual")]
    public void AnUnknownPrecisionIsOneLine(string command, params string[] rest)
    {
        var (code, output) = CliRun.Run([command, "--precision", "fp16", .. rest]);
        Assert.Equal(2, code);
        Assert.Contains("--precision must be fp32, tf32 or bf16, got 'fp16'", output);
        Assert.Single(output.Trim().Split('\n'));
    }
}
