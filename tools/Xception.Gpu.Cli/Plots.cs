using Xception.Gpu.IO;
using Xception.Gpu.Cli.Serving;
using Xception.Gpu.Studies;
using Xception.Gpu.Training;

namespace Xception.Gpu.Cli;

/// <summary>The command's plots (ScottPlot, PNG, written atomically), all drawn from <see cref="LogRow"/>s: a run's curves and a study's accuracy against steps.</summary>
static class Plots
{
    const int Width = 800, Height = 500;

    /// <summary>A training run's loss and accuracy (or MAP@100) per epoch, training and validation.</summary>
    public static void Curves(IReadOnlyList<LogRow> rows, string path)
    {
        if (rows.Count == 0) return;
        var plt = new ScottPlot.Plot();
        double[] xs = rows.Select(e => (double)e.Epoch).ToArray();
        void Line(string name, Func<LogRow, double?> f)
        {
            var ys = rows.Select(e => f(e) ?? double.NaN).ToArray();
            if (ys.All(double.IsNaN)) return;
            plt.Add.Scatter(xs, ys).LegendText = name;
        }
        Line("train loss", e => e.Loss);
        Line("val loss", e => e.ValLoss);
        Line("train accuracy", e => e.Acc ?? e.Map100);
        Line("val accuracy", e => e.ValAcc ?? e.ValMap100);
        plt.Title("Xception.Gpu training");
        plt.XLabel("epoch");
        plt.ShowLegend(ScottPlot.Alignment.UpperCenter);
        Save(plt, path);
    }

    /// <summary>
    /// A study's test accuracy against steps, as the paper's Figures 9 and 10: per variant the mean over seeds at
    /// the steps every seed has reached, and the min-max band when there are several seeds. Written to
    /// <c>&lt;folder&gt;/&lt;study&gt;.png</c>.
    /// </summary>
    public static void Study(StudyResults r)
    {
        var plt = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < r.Variants.Count; i++)
        {
            var v = r.Variants[i];
            var color = palette.GetColor(i);
            var runs = v.Runs.Values.Where(x => x.Count > 0).ToList();
            if (runs.Count == 0) continue;
            var steps = runs.Select(x => x.Select(row => row.Step).ToHashSet()).Aggregate((a, b) => { a.IntersectWith(b); return a; }).Order().ToArray();
            if (steps.Length == 0) continue;
            var at = steps.Select(st => runs.Select(x => (x.First(row => row.Step == st).ValAcc ?? double.NaN) * 100).ToList()).ToList();
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
        plt.Title($"{r.Study} study: {r.Settings["model"]} on {r.Settings["data"]}");
        plt.XLabel("training steps");
        plt.YLabel("test accuracy (%)");
        plt.ShowLegend(ScottPlot.Alignment.LowerRight);
        Save(plt, Path.Combine(r.Folder, r.Study + ".png"));
    }

    /// <summary>serve-bench's runs: inferences/s (solid, left axis) and p99 latency (dashed, right axis) against concurrency, one colour per run.</summary>
    public static void Serving(IReadOnlyList<ServeBenchCommand.Level> rows, string path)
    {
        var plt = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int k = 0;
        foreach (var run in rows.GroupBy(r => r.Label))
        {
            var color = palette.GetColor(k++);
            double[] xs = run.Select(r => (double)r.Concurrency).ToArray();
            var throughput = plt.Add.Scatter(xs, run.Select(r => r.InferPerSecond).ToArray());
            throughput.Color = color;
            throughput.LineWidth = 2;
            throughput.LegendText = $"{run.Key}: inferences/s";
            var p99 = plt.Add.Scatter(xs, run.Select(r => r.P99).ToArray());
            p99.Color = color;
            p99.LinePattern = ScottPlot.LinePattern.Dashed;
            p99.MarkerShape = ScottPlot.MarkerShape.OpenSquare;
            p99.LegendText = $"{run.Key}: p99 latency (ms)";
            p99.Axes.YAxis = plt.Axes.Right;
        }
        // Both axes from zero: the gap between the runs is the figure, and a cut axis would exaggerate it.
        double Top(IEnumerable<double> v) => Math.Max(1, v.Where(double.IsFinite).DefaultIfEmpty(1).Max() * 1.15);
        plt.Axes.SetLimitsY(0, Top(rows.Select(r => r.InferPerSecond)), plt.Axes.Left);
        plt.Axes.SetLimitsY(0, Top(rows.Select(r => r.P99)), plt.Axes.Right);
        plt.Axes.Bottom.Label.Text = "concurrent clients";
        plt.Axes.Left.Label.Text = "inferences/s (solid)";
        plt.Axes.Right.Label.Text = "p99 latency, ms (dashed)";
        plt.Title("xception serve: throughput and p99 latency against concurrency");
        plt.ShowLegend(ScottPlot.Alignment.UpperLeft);
        Save(plt, path, 900, 540);
    }

    static void Save(ScottPlot.Plot plt, string path, int width = Width, int height = Height)
    {
        var png = plt.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
        AtomicFile.Write(path, s => s.Write(png));
    }
}
