using Xception.Gpu.Graph;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Tests.IO;
using Xception.Gpu.Training;
using Xunit;

namespace Xception.Gpu.Tests.BadInput;

/// <summary>
/// Damaged copies of a valid small-model checkpoint and .h5: reading the configuration, building that model
/// and loading the weights (and, for the checkpoint, the training and optimizer state) either works or ends
/// in one clear XceptionException line, within the fuzzer's time and allocation bounds.
/// </summary>
public sealed class WeightsFuzzTests(ITestOutputHelper log)
{
    static readonly XceptionConfig Small = XceptionConfig.Mini(32, 3, 3);

    /// <summary>Enough to find the classes of failure, few enough to keep both runs well under a minute on two cores.</summary>
    const int Cases = 700;

    const string State = """{"Position":{"Epoch":0,"Batch":1,"Step":1,"Samples":8},"Running":[8,9.5,2,7,0,0],"Batch":8,"Seed":0,"Optimizer":"{}","Data":"d"}""";

    static long ParameterBytes(Model m) => 4L * m.Parameters.Sum(p => (long)p.Length);

    [Fact]
    public void DamagedCheckpointsAreReadOrRefusedClearly() => FuzzFile("checkpoint", "x.safetensors", 1000, (m, path) =>
    {
        m.Bind(Backends.Get(Backends.Cpu));
        using var opt = new OptimizerState(m, new OptimizerSettings());
        ModelWeights.Save(m, Small, path, new Dictionary<string, string> { ["train_state"] = State }, opt.Export());
    }, (model, mutant) =>
    {
        model.Bind(Backends.Get(Backends.Cpu));
        using var opt = new OptimizerState(model, new OptimizerSettings());
        Checkpoints.Load(mutant, model, opt);
    });

    [Fact]
    public void DamagedH5FilesAreReadOrRefusedClearly() =>
        FuzzFile("h5", "x.h5", 2000, (m, path) => ModelWeights.Save(m, Small, path), (_, _) => { });

    /// <summary>
    /// Writes a valid file of the small model, then fuzzes it: each mutant's configuration is read, that model
    /// built and the weights loaded, then <paramref name="more"/> reads what else the format holds.
    /// </summary>
    void FuzzFile(string what, string name, int seed, Action<Model, string> write, Action<Model, string> more)
    {
        using var tmp = new TempDir();
        var valid = tmp[name];
        long paramBytes;
        using (var m = XceptionBuilder.Build(Small))
        {
            m.Initialize(3);
            write(m, valid);
            paramBytes = ParameterBytes(m);
        }
        var mutant = tmp["mutant" + Path.GetExtension(name)];
        var bytes = File.ReadAllBytes(valid);
        var report = Fuzz.Run(what, bytes, Cases, seed, b =>
        {
            File.WriteAllBytes(mutant, b);
            var config = ModelWeights.ConfigOf(mutant, new XceptionConfig());
            using var model = XceptionBuilder.Build(config);
            ModelWeights.Load(model, mutant);
            more(model, mutant);
        }, maxAllocatedBytes: 8L * bytes.Length + paramBytes);
        Describe(what, bytes.Length, paramBytes, report);
    }

    void Describe(string what, long fileBytes, long paramBytes, Fuzz.Report r)
    {
        log.WriteLine($"{what}: {Cases} cases of a {fileBytes:N0}-byte file ({paramBytes:N0} parameter bytes): {r.Parsed} read, {r.Refused} refused; " +
                      $"slowest {r.Slowest.TotalMilliseconds:F0} ms, most allocated {r.MostAllocated:N0} bytes");
        Assert.Equal(Cases, r.Parsed + r.Refused);
        Assert.True(r.Refused > 0, "no mutant was refused: the fuzzer did not reach the parser");
    }
}
