using Xception.Gpu.Tests.IO;
using Xception.Gpu.Training;
using Xunit;

namespace Xception.Gpu.Tests.Training;

/// <summary>The one log format of training runs and study runs: both encodings read back what was written, and a resumed run keeps what its checkpoint covers.</summary>
public class TrainingLogTests
{
    static EpochReport Report(int epoch, double? top1, bool validation) => new(epoch, epoch * 4L, 0.05 / epoch,
        new EvalResult(64, 1.5 / epoch, top1 ?? double.NaN, 0.9, double.NaN),
        validation ? new EvalResult(16, 1.25 / epoch, 0.5, 1.0, double.NaN) : null, 2.5, 25.6);

    [Theory]
    [InlineData("log.jsonl")]
    [InlineData("log.csv")]
    public void RowsReadBackAsWrittenWithNullsForWhatDoesNotApply(string name)
    {
        using var tmp = new TempDir();
        var log = new TrainingLog(tmp[name]);
        log.Append(Report(1, 0.25, validation: true));
        log.Append(Report(2, null, validation: false));
        var back = TrainingLog.Read(tmp[name]);
        Assert.Equal(log.Rows, back);
        Assert.Equal(2, back.Count);
        Assert.Equal(0.25, back[0].Acc);
        Assert.Null(back[0].Map100);          // single-label data: no MAP@100
        Assert.Null(back[1].Acc);             // a NaN is written as null
        Assert.Null(back[1].ValLoss);         // no validation
        Assert.Equal(2.5, back[0].ElapsedSeconds);
        Assert.Equal(5.0, back[1].ElapsedSeconds); // training time adds up over the rows
        Assert.Equal(new TrainingLog(tmp[name]).Rows, back);
        if (name.EndsWith(".csv")) Assert.Equal(string.Join(",", LogRow.Columns), File.ReadLines(tmp[name]).First());
    }

    [Fact]
    public void ALineCutShortEndsTheReading()
    {
        using var tmp = new TempDir();
        var log = new TrainingLog(tmp["log.jsonl"]);
        log.Append(Report(1, 0.25, true));
        log.Append(Report(2, 0.5, true));
        var text = File.ReadAllText(tmp["log.jsonl"]);
        File.WriteAllText(tmp["log.jsonl"], text[..(text.Length - 20)]);
        Assert.Single(TrainingLog.Read(tmp["log.jsonl"]));
    }

    [Theory]
    [InlineData("log.jsonl")]
    [InlineData("log.csv")]
    public void KeepUpToDropsTheRowsAfterACheckpointAndTheFileFollows(string name)
    {
        using var tmp = new TempDir();
        var log = new TrainingLog(tmp[name]);
        for (int e = 1; e <= 3; e++) log.Append(Report(e, 0.5, true)); // steps 4, 8, 12
        var resumed = new TrainingLog(tmp[name]);
        resumed.KeepUpTo(8);
        Assert.Equal([4L, 8], resumed.Rows.Select(r => r.Step));
        Assert.Equal([4L, 8], TrainingLog.Read(tmp[name]).Select(r => r.Step));
        resumed.Append(Report(3, 0.75, true));
        Assert.Equal([4L, 8, 12], TrainingLog.Read(tmp[name]).Select(r => r.Step));
        Assert.Equal(0.75, TrainingLog.Read(tmp[name])[^1].Acc);
    }

    [Fact]
    public void AddKeepsARowWithoutWritingIt()
    {
        using var tmp = new TempDir();
        var log = new TrainingLog(tmp["log.jsonl"]);
        log.Add(Report(1, 0.5, true));
        Assert.Single(log.Rows);
        Assert.False(File.Exists(tmp["log.jsonl"]));
    }
}
