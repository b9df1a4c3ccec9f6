using System.Globalization;
using System.Text;
using System.Text.Json;
using Xception.Gpu.IO;

namespace Xception.Gpu.Cli;

/// <summary>
/// A study's results: the table (<c>study.md</c>, <c>.csv</c>, <c>.json</c>) and the plot (<c>study.png</c>), from
/// the runs' logs. Drawn again after every run, so that a long study shows what it has so far.
/// </summary>
static class StudyReport
{
    /// <summary>How the img/s column is measured, for the table's notes.</summary>
    public const string ThroughputNote =
        "img/s: training images per second (forward, backward and update, data loading included, evaluation excluded; " +
        "the device is synchronized before the clock is read), the median over the evaluation intervals of every seed after each run's first (its warm-up)";

    /// <summary>One line of the table.</summary>
    public sealed record Row(string Variant, int Runs, int Finished, long? Step, double? Top1Mean, double? Top1Spread, double? Top1Min, double? Top1Max,
        long Parameters, long MultiplyAdds, double? ImagesPerSecond);

    /// <summary>Writes the table and the plot; returns the markdown table.</summary>
    public static string Write(string dir, string study, IReadOnlyDictionary<string, string> settings, IReadOnlyList<StudyVariantResult> variants, string device)
    {
        var rows = variants.Select(Summarize).ToList();
        string md = Markdown(study, settings, rows, device);
        string b = Path.Combine(dir, study);
        AtomicFile.Write(b + ".md", s => s.Write(Encoding.UTF8.GetBytes(md)));
        AtomicFile.Write(b + ".csv", s => s.Write(Encoding.UTF8.GetBytes(Csv(rows))));
        var json = new { study, device, settings, throughput = ThroughputNote, variants = rows };
        AtomicFile.Write(b + ".json", s => JsonSerializer.Serialize(s, json, new JsonSerializerOptions(StudyRunner.Json) { WriteIndented = true }));
        var png = Plot(study, settings, variants);
        AtomicFile.Write(b + ".png", s => s.Write(png));
        return md;
    }

    /// <summary>
    /// A variant's final top-1 over its seeds: the mean and the sample standard deviation (its spread) of the runs
    /// that reached the last step, and its img/s.
    /// </summary>
    public static Row Summarize(StudyVariantResult v)
    {
        long? lastStep = v.Runs.Values.Where(r => r.Count > 0).Select(r => r[^1].Step).DefaultIfEmpty().Max() is var m && m > 0 ? m : null;
        var finals = v.Runs.Values.Where(r => r.Count > 0 && r[^1].Step == lastStep).Select(r => r[^1].TestTop1).ToList();
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
        sb.AppendLine($"{s["--model"]} on {s["--data"]} (training images: {s["--train-images"]}, test images: {s["--test-images"]}), {s["--steps"]} steps of batch {s["--batch"]}, " +
                      $"SGD momentum {s["--momentum"]}, lr {s["--lr"]} ({s["--lr-schedule"]}), weight decay {s["--weight-decay"]}, seeds 0 to {int.Parse(s["--seeds"], CultureInfo.InvariantCulture) - 1}; device {device}.");
        sb.AppendLine();
        sb.AppendLine("| variant | test top-1 (mean ± std over seeds) | runs | trainable parameters | multiply-adds per image | img/s |");
        sb.AppendLine("|---|---|---|---:|---:|---:|");
        foreach (var r in rows)
        {
            string top1 = r.Top1Mean is not { } mean ? "-"
                : r.Top1Spread is { } sd ? $"{mean * 100:F2}% ± {sd * 100:F2} (min {r.Top1Min * 100:F2}, max {r.Top1Max * 100:F2})" : $"{mean * 100:F2}%";
            if (r.Step is { } st && st.ToString(CultureInfo.InvariantCulture) != s["--steps"]) top1 += $" at step {st}";
            sb.AppendLine($"| {r.Variant} | {top1} | {r.Finished}/{s["--seeds"]} | {r.Parameters:N0} | {Macs(r.MultiplyAdds)} | {(r.ImagesPerSecond is { } ips ? ips.ToString("F1", CultureInfo.InvariantCulture) : "-")} |");
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

    /// <summary>Test accuracy against steps, as the paper's Figures 9 and 10: the mean over seeds per variant, the min-max band when there are several.</summary>
    static byte[] Plot(string study, IReadOnlyDictionary<string, string> s, IReadOnlyList<StudyVariantResult> variants)
    {
        var plt = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < variants.Count; i++)
        {
            var v = variants[i];
            var color = palette.GetColor(i);
            // The steps every run of the variant has evaluated so far.
            var runs = v.Runs.Values.Where(r => r.Count > 0).ToList();
            if (runs.Count == 0) continue;
            var steps = runs.Select(r => r.Select(x => x.Step).ToHashSet()).Aggregate((a, b) => { a.IntersectWith(b); return a; }).Order().ToArray();
            if (steps.Length == 0) continue;
            var at = steps.Select(st => runs.Select(r => r.First(x => x.Step == st).TestTop1 * 100).ToList()).ToList();
            double[] xs = steps.Select(x => (double)x).ToArray();
            if (runs.Count > 1)
            {
                var band = plt.Add.FillY(xs, at.Select(a => a.Min()).ToArray(), at.Select(a => a.Max()).ToArray());
                band.FillColor = color.WithAlpha(0.2);
                band.LineColor = ScottPlot.Colors.Transparent;
            }
            var line = plt.Add.Scatter(xs, at.Select(a => a.Average()).ToArray());
            line.Color = color;
            line.LineWidth = 2;
            line.MarkerSize = 5;
            line.LegendText = runs.Count > 1 ? $"{v.Name} (mean of {runs.Count} seeds)" : v.Name;
        }
        plt.Title($"{study} study: {s["--model"]} on {s["--data"]}");
        plt.XLabel("training steps");
        plt.YLabel("test accuracy (%)");
        plt.ShowLegend(ScottPlot.Alignment.LowerRight);
        return plt.GetImageBytes(800, 500, ScottPlot.ImageFormat.Png);
    }
}
