using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Xception.Gpu.IO;

namespace Xception.Gpu.Training;

/// <summary>
/// One evaluation of a run, a line of its log. Metrics that do not apply (top-1 of multi-label data, MAP@100 of
/// single-label data, the validation figures of a run without validation) and values that are not finite are null.
/// </summary>
/// <param name="Epoch">the epoch (or evaluation interval) that ended, from 1</param>
/// <param name="Step">optimizer steps done</param>
/// <param name="LearningRate">the rate of the last step</param>
/// <param name="Loss">mean training loss since the previous row</param>
/// <param name="Acc">running training top-1 since the previous row</param>
/// <param name="Top5">running training top-5</param>
/// <param name="Map100">running training MAP@100 (multi-label data)</param>
/// <param name="ValLoss">loss on the validation (or test) images</param>
/// <param name="ValAcc">top-1 on the validation (or test) images</param>
/// <param name="ValTop5">top-5 on the validation (or test) images</param>
/// <param name="ValMap100">MAP@100 on the validation (or test) images</param>
/// <param name="Seconds">training time since the previous row (evaluation excluded)</param>
/// <param name="ElapsedSeconds">training time of the run so far, over every session that resumed it</param>
/// <param name="ImagesPerSecond">training images per second since the previous row</param>
public sealed record LogRow(
    [property: JsonPropertyName("epoch")] int Epoch,
    [property: JsonPropertyName("step")] long Step,
    [property: JsonPropertyName("lr")] double LearningRate,
    [property: JsonPropertyName("loss")] double? Loss,
    [property: JsonPropertyName("acc")] double? Acc,
    [property: JsonPropertyName("top5")] double? Top5,
    [property: JsonPropertyName("map100")] double? Map100,
    [property: JsonPropertyName("val_loss")] double? ValLoss,
    [property: JsonPropertyName("val_acc")] double? ValAcc,
    [property: JsonPropertyName("val_top5")] double? ValTop5,
    [property: JsonPropertyName("val_map100")] double? ValMap100,
    [property: JsonPropertyName("seconds")] double? Seconds,
    [property: JsonPropertyName("elapsed_seconds")] double ElapsedSeconds,
    [property: JsonPropertyName("images_per_s")] double? ImagesPerSecond)
{
    /// <summary>The column names, in order (the CSV header).</summary>
    public static readonly string[] Columns =
        ["epoch", "step", "lr", "loss", "acc", "top5", "map100", "val_loss", "val_acc", "val_top5", "val_map100", "seconds", "elapsed_seconds", "images_per_s"];

    /// <summary>The row of an epoch's report, <paramref name="elapsedBefore"/> seconds of training before it.</summary>
    public static LogRow Of(EpochReport r, double elapsedBefore) => new(
        r.Epoch, r.Step, r.LearningRate, Finite(r.Train.Loss), Finite(r.Train.Top1), Finite(r.Train.Top5), Finite(r.Train.MapAt100),
        Finite(r.Validation?.Loss), Finite(r.Validation?.Top1), Finite(r.Validation?.Top5), Finite(r.Validation?.MapAt100),
        r.Seconds, elapsedBefore + r.Seconds, r.ImagesPerSecond);

    /// <summary><paramref name="x"/> when it is a finite number, else null.</summary>
    public static double? Finite(double? x) => x is { } v && double.IsFinite(v) ? v : null;

    internal object?[] Values() =>
        [Epoch, Step, LearningRate, Loss, Acc, Top5, Map100, ValLoss, ValAcc, ValTop5, ValMap100, Seconds, ElapsedSeconds, ImagesPerSecond];
}

/// <summary>
/// A run's log: a row per evaluation, as JSON lines, or CSV when the path ends in .csv. The rows are kept in memory as
/// well (a plot reads them); a row that cannot be written is still kept. A resumed run keeps the rows its checkpoint
/// covers (<see cref="KeepUpTo"/>): the evaluations after it are done again.
/// </summary>
public sealed class TrainingLog
{
    readonly List<LogRow> rows;

    /// <summary>The log at <paramref name="path"/>, with the rows it already holds (none when it does not exist).</summary>
    public TrainingLog(string path)
    {
        Path = path;
        rows = Read(path);
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>The rows, oldest first.</summary>
    public IReadOnlyList<LogRow> Rows => rows;

    /// <summary>The training time of the rows so far.</summary>
    public double ElapsedSeconds => rows.Count > 0 ? rows[^1].ElapsedSeconds : 0;

    bool Csv => Path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase);

    /// <summary>Drops the rows after <paramref name="step"/> and writes the file again (atomically).</summary>
    public void KeepUpTo(long step)
    {
        if (rows.RemoveAll(r => r.Step > step) == 0 && File.Exists(Path)) return;
        AtomicFile.Write(Path, s =>
        {
            using var w = new StreamWriter(s, leaveOpen: true);
            if (Csv) w.Write(Header());
            foreach (var r in rows) w.Write(Line(r));
        });
    }

    /// <summary>Adds a row and appends it to the file (an I/O error is thrown after the row is kept).</summary>
    public void Append(LogRow row)
    {
        rows.Add(row);
        bool header = Csv && (!File.Exists(Path) || new FileInfo(Path).Length == 0);
        File.AppendAllText(Path, (header ? Header() : "") + Line(row));
    }

    /// <summary>Adds the row of an epoch's report (<see cref="LogRow.Of"/>, after the training time of the rows so far) and appends it to the file.</summary>
    public LogRow Append(EpochReport r)
    {
        var row = LogRow.Of(r, ElapsedSeconds);
        Append(row);
        return row;
    }

    /// <summary>Adds the row of an epoch's report to <see cref="Rows"/> only (after the file could not be written, the rows still make the plot).</summary>
    public LogRow Add(EpochReport r)
    {
        var row = LogRow.Of(r, ElapsedSeconds);
        rows.Add(row);
        return row;
    }

    static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    string Line(LogRow r) => Csv
        ? string.Join(",", r.Values().Select(v => v is null ? "" : Convert.ToString(v, CultureInfo.InvariantCulture))) + "\n"
        : JsonSerializer.Serialize(r, Json) + "\n";

    static string Header() => string.Join(",", LogRow.Columns) + "\n";

    /// <summary>The rows of a log file (JSON lines, or CSV by its extension); a line cut short by an interruption ends the reading.</summary>
    public static List<LogRow> Read(string path)
    {
        var list = new List<LogRow>();
        // A regular file only: a device such as /dev/null or /dev/full has no rows (and /dev/full would never end).
        var file = new FileInfo(path);
        if (!file.Exists || file.Length == 0) return list;
        bool csv = path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase);
        string[]? header = null;
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            if (csv && header is null) { header = line.Split(','); continue; }
            var row = csv ? FromCsv(header!, line) : FromJson(line);
            if (row is null) break;
            list.Add(row);
        }
        return list;
    }

    static LogRow? FromJson(string line)
    {
        try { return JsonSerializer.Deserialize<LogRow>(line, Json); }
        catch (JsonException) { return null; }
    }

    static LogRow? FromCsv(string[] header, string line)
    {
        var cells = line.Split(',');
        if (cells.Length != header.Length) return null;
        double? D(string name)
        {
            int i = Array.IndexOf(header, name);
            if (i < 0 || cells[i].Length == 0) return null;
            return double.TryParse(cells[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : null;
        }
        if (D("step") is not { } step || D("epoch") is not { } epoch || D("lr") is not { } lr) return null;
        return new LogRow((int)epoch, (long)step, lr, D("loss"), D("acc"), D("top5"), D("map100"), D("val_loss"), D("val_acc"), D("val_top5"),
            D("val_map100"), D("seconds"), D("elapsed_seconds") ?? 0, D("images_per_s"));
    }
}
