using System.Text.Json;
using Xception.Gpu.Studies;
using Xception.Gpu.Tests.IO;
using Xception.Gpu.Training;
using Xunit;

namespace Xception.Gpu.Tests.Studies;

/// <summary>
/// The study in the library, without a process: its folder's settings guard a continued study, its tables come
/// from its runs' logs, and a finished study run again trains nothing.
/// </summary>
public class StudyRunnerTests
{
    static StudySettings Tiny(string study = "residual", long steps = 3) => new()
    {
        Study = study, Data = "synthetic:40", Model = "xception-mini", ImageSize = 16, TestImages = 8, Steps = steps, EvalEvery = 2,
        Batch = 8, Seeds = 1, Segments = study == "segments" ? [1, 0] : [],
    };

    [Fact]
    public void AStudyWritesItsTablesAfterEveryRunAndAFinishedOneTrainsNothingAgain()
    {
        using var tmp = new TempDir();
        var dir = tmp["study"];
        var lines = new List<string>();
        var written = new List<StudyResults>();
        using var device = Device.Open(DeviceSpec.Parse("cpu"));
        var outcome = new StudyRunner(Tiny(), dir, lines.Add) { ResultsWritten = written.Add }.Run(device, CancellationToken.None);

        Assert.False(outcome.Stopped);
        Assert.Empty(outcome.Failures);
        Assert.Equal(3, written.Count); // after each of the two runs, and at the end
        Assert.Equal(["residual", "no-residual"], outcome.Results.Variants.Select(v => v.Name));
        foreach (var v in outcome.Results.Variants)
        {
            // Evaluations at step 2 (the interval) and 3 (the run's end, a shorter last interval).
            var rows = v.Runs[0];
            Assert.Equal([2L, 3], rows.Select(r => r.Step));
            Assert.All(rows, r => Assert.InRange(r.ValAcc!.Value, 0, 1));
            Assert.Equal(rows, TrainingLog.Read(Path.Combine(dir, $"{v.Name}-seed0", StudyRunner.LogFile)));
        }
        Assert.Contains("| residual |", outcome.Results.Table);
        Assert.Equal(outcome.Results.Table, File.ReadAllText(Path.Combine(dir, "residual.md")));
        var stored = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(Path.Combine(dir, StudyRunner.SettingsFile)))!;
        Assert.Equal("3", stored["steps"]);
        Assert.Equal("on", stored["augment"]);

        lines.Clear();
        var again = new StudyRunner(Tiny(), dir, lines.Add).Run(device, CancellationToken.None);
        Assert.Equal(2, lines.Count(l => l.Contains("finished earlier")));
        Assert.Equal(outcome.Results.Table, again.Results.Table);
    }

    [Fact]
    public void AFolderWithOtherSettingsIsRefusedNamingTheSetting()
    {
        using var tmp = new TempDir();
        var dir = tmp["study"];
        _ = new StudyRunner(Tiny(), dir);
        var e = Assert.Throws<StudyFolderException>(() => new StudyRunner(Tiny(steps: 4), dir));
        Assert.Equal(("steps", "3", "4"), (e.Setting, e.Before, e.Now));
        e = Assert.Throws<StudyFolderException>(() => new StudyRunner(Tiny("activation"), dir));
        Assert.Equal(("study", "residual", "activation"), (e.Setting, e.Before, e.Now));

        Directory.CreateDirectory(tmp["other"]);
        File.WriteAllText(Path.Combine(tmp["other"], "notes.txt"), "not a study");
        e = Assert.Throws<StudyFolderException>(() => new StudyRunner(Tiny(), tmp["other"]));
        Assert.Null(e.Setting);
        Assert.Contains("it is not a study folder", e.Message);

        // More seeds continue the same study.
        var lines = new List<string>();
        _ = new StudyRunner(Tiny() with { Seeds = 3 }, dir, lines.Add);
        Assert.Contains(lines, l => l.StartsWith("seeds: 1 before, 3 now"));
    }

    [Fact]
    public void SettingsStoredByTheirOptionNamesAreTheSameSettings()
    {
        // study.json files that name the settings as the command line spells them ("--steps", "--no-augment").
        using var tmp = new TempDir();
        var dir = tmp["study"];
        Directory.CreateDirectory(dir);
        var stored = Tiny().Stored(3).ToDictionary(kv => kv.Key switch
        {
            "study" => "study",
            "augment" => "--no-augment",
            _ => "--" + kv.Key.Replace('_', '-'),
        }, kv => kv.Key == "augment" ? (kv.Value == "on" ? "off" : "on") : kv.Value);
        File.WriteAllText(Path.Combine(dir, StudyRunner.SettingsFile), JsonSerializer.Serialize(stored));
        _ = new StudyRunner(Tiny(), dir);
        var e = Assert.Throws<StudyFolderException>(() => new StudyRunner(Tiny() with { Augment = false }, dir));
        Assert.Equal(("augment", "on", "off"), (e.Setting, e.Before, e.Now));
    }

    [Fact]
    public void ASegmentCountThatDividesNoLayerNamesTheValidOnes()
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<StudySettingException>(() => new StudyRunner(Tiny("segments") with { Segments = [3] }, tmp["s"]));
        Assert.Equal("segments", e.Setting);
        Assert.StartsWith("3 does not divide the input channels of every separable layer of xception-mini", e.Problem);
        Assert.EndsWith("valid values: 1, 2, 4, 8, and 0 (depthwise)", e.Problem);
        Assert.False(Directory.Exists(tmp["s"]) && Directory.EnumerateFileSystemEntries(tmp["s"]).Any());
    }
}
