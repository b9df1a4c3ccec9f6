using System.Globalization;
using System.Text;
using System.Text.Json;
using Xception.Gpu.IO;
using Xception.Gpu.Training;

namespace Xception.Gpu.Studies;

/// <summary>What a study knows of one variant: its cost and its runs' logs by seed.</summary>
public sealed record StudyVariantResult(string Name, long Parameters, long MultiplyAdds, IReadOnlyDictionary<int, IReadOnlyList<LogRow>> Runs);

/// <summary>A study's results so far, as <see cref="StudyReport.Write"/> wrote them.</summary>
/// <param name="Folder">the study folder</param>
/// <param name="Study">the study's name</param>
/// <param name="Settings">the stored settings (<see cref="StudySettings.Stored"/>)</param>
/// <param name="Variants">every variant's runs</param>
/// <param name="Device">the device it trained on</param>
/// <param name="Table">the markdown table</param>
public sealed record StudyResults(string Folder, string Study, IReadOnlyDictionary<string, string> Settings, IReadOnlyList<StudyVariantResult> Variants,
    string Device, string Table);

/// <summary>
/// A study's table (<c>study.md</c>, <c>.csv</c>, <c>.json</c>) from its runs' logs, written again after every run so
/// that a long study shows what it has so far.
/// </summary>
public static class StudyReport
{
    /// <summary>How the img/s column is measured, for the table's notes.</summary>
    public const string ThroughputNote =
        "img/s: training images per second (forward, backward and update, data loading included, evaluation excluded; " +
        "the device is synchronized before the clock is read), the median over the evaluation intervals of every seed after each run's first (its warm-up)";

    /// <summary>One line of the table: a variant's final test top-1 over the seeds that reached <see cref="Step"/>.</summary>
    public sealed record Row(string Variant, int Runs, int Finished, long? Step, double? Top1Mean, double? Top1Spread, double? Top1Min, double? Top1Max,
        long Parameters, long MultiplyAdds, double? ImagesPerSecond);

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    /// <summary>Writes the tables into <paramref name="folder"/> as <c>&lt;study&gt;.md</c>, <c>.csv</c> and <c>.json</c>.</summary>
    public static StudyResults Write(string folder, string study, IReadOnlyDictionary<string, string> settings, IReadOnlyList<StudyVariantResult> variants, string device)
    {
        var rows = variants.Select(Summarize).ToList();
        string md = Markdown(study, settings, rows, device);
        string b = Path.Combine(folder, study);
        AtomicFile.Write(b + ".md", s => s.Write(Encoding.UTF8.GetBytes(md)));
        AtomicFile.Write(b + ".csv", s => s.Write(Encoding.UTF8.GetBytes(Csv(rows))));
        var json = new { study, device, settings, throughput = ThroughputNote, variants = rows };
        AtomicFile.Write(b + ".json", s => JsonSerializer.Serialize(s, json, Json));
        return new StudyResults(folder, study, settings, variants, device, md);
    }

    /// <summary>
    /// A variant's final top-1 over its seeds: the mean and the sample standard deviation (its spread) of the runs
    /// that reached the last step, and its img/s.
    /// </summary>
    public static Row Summarize(StudyVariantResult v)
    {
        long? lastStep = v.Runs.Values.Where(r => r.Count > 0).Select(r => r[^1].Step).DefaultIfEmpty().Max() is var m && m > 0 ? m : null;
        var finals = v.Runs.Values.Where(r => r.Count > 0 && r[^1].Step == lastStep).Select(r => r[^1].ValAcc ?? double.NaN).ToList();
        double? mean = finals.Count > 0 ? finals.Average() : null;
        double? spread = finals.Count > 1 ? Math.Sqrt(finals.Sum(x => (x - mean!.Value) * (x - mean.Value)) / (finals.Count - 1)) : null;
        var speeds = v.Runs.Values.SelectMany(r => r.Skip(r.Count > 1 ? 1 : 0)).Select(r => r.ImagesPerSecond).OfType<double>().Order().ToList();
        double? median = speeds.Count == 0 ? null : speeds.Count % 2 == 1 ? speeds[speeds.Count / 2] : (speeds[speeds.Count / 2 - 1] + speeds[speeds.Count / 2]) / 2;
        return new Row(v.Name, v.Runs.Count, finals.Count, lastStep, mean, spread, finals.Count > 0 ? finals.Min() : null, finals.Count > 0 ? finals.Max() : null,
            v.Parameters, v.MultiplyAdds, median);
    }

    static string Markdown(string study, IReadOnlyDictionary<string, string> s, List<Row> rows, string device)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# The {study} study");
        sb.AppendLine();
        sb.AppendLine($"{s["model"]} on {s["data"]} (training images: {s["train_images"]}, test images: {s["test_images"]}), {s["steps"]} steps of batch {s["batch"]}, " +
                      $"SGD momentum {s["momentum"]}, lr {s["lr"]} ({s["lr_schedule"]}), weight decay {s["weight_decay"]}, seeds 0 to {int.Parse(s["seeds"], CultureInfo.InvariantCulture) - 1}; device {device}.");
        sb.AppendLine();
        sb.AppendLine("| variant | test top-1 (mean ± std over seeds) | runs | trainable parameters | multiply-adds per image | img/s |");
        sb.AppendLine("|---|---|---|---:|---:|---:|");
        foreach (var r in rows)
        {
            string top1 = r.Top1Mean is not { } mean ? "-"
                : r.Top1Spread is { } sd ? $"{mean * 100:F2}% ± {sd * 100:F2} (min {r.Top1Min * 100:F2}, max {r.Top1Max * 100:F2})" : $"{mean * 100:F2}%";
            if (r.Step is { } st && st.ToString(CultureInfo.InvariantCulture) != s["steps"]) top1 += $" at step {st}";
            sb.AppendLine($"| {r.Variant} | {top1} | {r.Finished}/{s["seeds"]} | {r.Parameters:N0} | {Macs(r.MultiplyAdds)} | {(r.ImagesPerSecond is { } ips ? ips.ToString("F1", CultureInfo.InvariantCulture) : "-")} |");
        }
        sb.AppendLine();
        sb.AppendLine($"Top-1 on the test images after the last step; std is the sample standard deviation over the seeds that finished. Multiply-adds: convolutions and the classifier, forward, per image. {ThroughputNote}.");
        return sb.ToString();
    }

    static string Macs(long n) => n >= 1_000_000_000 ? $"{n / 1e9:F2} G" : $"{n / 1e6:F1} M";

    static string Csv(List<Row> rows)
    {
        var sb = new StringBuilder("variant,runs_finished,step,top1_mean,top1_std,top1_min,top1_max,parameters,multiply_adds,images_per_second\n");
        static string F(double? x) => x?.ToString("R", CultureInfo.InvariantCulture) ?? "";
        foreach (var r in rows)
            sb.AppendLine(string.Join(",", r.Variant, r.Finished.ToString(CultureInfo.InvariantCulture), r.Step?.ToString(CultureInfo.InvariantCulture) ?? "",
                F(r.Top1Mean), F(r.Top1Spread), F(r.Top1Min), F(r.Top1Max), r.Parameters.ToString(CultureInfo.InvariantCulture),
                r.MultiplyAdds.ToString(CultureInfo.InvariantCulture), F(r.ImagesPerSecond)));
        return sb.ToString();
    }
}
