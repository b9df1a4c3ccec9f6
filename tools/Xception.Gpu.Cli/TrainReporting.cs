using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectre.Console;
using Xception.Gpu.Training;

namespace Xception.Gpu.Cli;

/// <summary>
/// What a person sees while training: a Spectre.Console progress bar with ETA, images/s, loss and accuracy
/// on a terminal; a line every few seconds when the output is a file or a pipe. Also writes the per-epoch
/// log (JSON lines, or CSV for a .csv path) and the curves as a PNG.
/// </summary>
sealed class TrainReporting : ITrainingObserver
{
    readonly string? logPath;
    readonly string? plotPath;
    readonly List<EpochReport> epochs = new();
    readonly bool interactive = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
    ProgressTask? task;
    long totalSteps;
    DateTime lastLine = DateTime.MinValue;
    readonly System.Diagnostics.Stopwatch clock = System.Diagnostics.Stopwatch.StartNew();
    long firstStep;

    public TrainReporting(string? logPath, string? plotPath)
    {
        this.logPath = logPath;
        this.plotPath = plotPath;
    }

    /// <summary>Runs <paramref name="work"/> with the progress display around it.</summary>
    public T Run<T>(Func<T> work)
    {
        if (!interactive) return work();
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                     new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                task = ctx.AddTask("training", maxValue: 1);
                result = work();
                task.Value = task.MaxValue;
            });
        return result;
    }

    public void OnStart(TrainPosition from, int epochs, int stepsPerEpoch, long? maxSteps)
    {
        totalSteps = Math.Min((long)epochs * stepsPerEpoch, maxSteps ?? long.MaxValue);
        firstStep = from.Step;
        clock.Restart();
        if (task is not null) { task.MaxValue = Math.Max(totalSteps, 1); task.Value = from.Step; }
        if (from.Step > 0) Say($"resuming at epoch {from.Epoch + 1}, batch {from.Batch + 1} (step {from.Step})");
    }

    public void OnStep(TrainPosition at, double loss, double lr, EvalResult running, double imagesPerSecond)
    {
        string acc = double.IsNaN(running.Top1) ? $"MAP@100 {running.MapAt100:P1}" : $"acc {running.Top1:P1}";
        string text = $"epoch {at.Epoch + 1} step {at.Step}/{totalSteps}  loss {loss:F4}  {acc}  lr {lr:G3}  {imagesPerSecond:F1} img/s";
        if (task is null && at.Step > firstStep)
        {
            var eta = TimeSpan.FromSeconds(clock.Elapsed.TotalSeconds / (at.Step - firstStep) * (totalSteps - at.Step));
            text += $"  ETA {(int)eta.TotalMinutes}:{eta.Seconds:D2}";
        }
        if (task is not null)
        {
            task.Value = at.Step;
            task.Description = Markup.Escape(text);
        }
        else if ((DateTime.UtcNow - lastLine).TotalSeconds >= 10 || at.Step == totalSteps)
        {
            lastLine = DateTime.UtcNow;
            Console.WriteLine(text);
        }
    }

    public void OnEpoch(EpochReport r)
    {
        epochs.Add(r);
        var t = r.Train;
        string train = double.IsNaN(t.Top1) ? $"MAP@100 {t.MapAt100:P2}" : $"acc {t.Top1:P2}";
        string val = r.Validation is { } v ? (double.IsNaN(v.Top1) ? $"  val_loss {v.Loss:F4}  val_MAP@100 {v.MapAt100:P2}" : $"  val_loss {v.Loss:F4}  val_acc {v.Top1:P2}  val_top5 {v.Top5:P2}") : "";
        Say($"epoch {r.Epoch}: loss {t.Loss:F4}  {train}{val}  ({r.Seconds:F1} s, {r.ImagesPerSecond:F1} img/s)");
        // After training started, a log or plot that cannot be written is a warning (once each): the run and
        // its checkpoints matter more.
        Try(ref logFailed, "the log", logPath, () => WriteLog(r));
        Try(ref plotFailed, "the plot", plotPath, WritePlot);
    }

    bool logFailed, plotFailed;

    void Try(ref bool failed, string what, string? path, Action write)
    {
        if (failed) return;
        try { write(); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            failed = true;
            Say($"warning: could not write {what} '{path}' ({e.Message.Split('\n')[0].TrimEnd('.')}); training goes on without it");
        }
    }

    public void OnCheckpoint(string path) { }

    public void OnWarning(string message) => Say($"warning: {message}");

    void Say(string line)
    {
        if (interactive) AnsiConsole.MarkupLine(Markup.Escape(line));
        else Console.WriteLine(line);
    }

    void WriteLog(EpochReport r)
    {
        if (logPath is null) return;
        var row = new Dictionary<string, object?>
        {
            ["epoch"] = r.Epoch, ["step"] = r.Step, ["lr"] = r.LearningRate, ["loss"] = r.Train.Loss,
            ["acc"] = Nan(r.Train.Top1), ["top5"] = Nan(r.Train.Top5), ["map100"] = Nan(r.Train.MapAt100),
            ["val_loss"] = Nan(r.Validation?.Loss), ["val_acc"] = Nan(r.Validation?.Top1), ["val_top5"] = Nan(r.Validation?.Top5),
            ["val_map100"] = Nan(r.Validation?.MapAt100), ["seconds"] = r.Seconds, ["images_per_s"] = r.ImagesPerSecond,
        };
        bool csv = logPath.EndsWith(".csv", StringComparison.OrdinalIgnoreCase);
        var sb = new StringBuilder();
        if (csv && (!File.Exists(logPath) || new FileInfo(logPath).Length == 0)) sb.AppendLine(string.Join(",", row.Keys));
        sb.AppendLine(csv
            ? string.Join(",", row.Values.Select(v => v is null ? "" : Convert.ToString(v, CultureInfo.InvariantCulture)))
            : JsonSerializer.Serialize(row));
        File.AppendAllText(logPath, sb.ToString());
    }

    static double? Nan(double? v) => v is { } x && double.IsFinite(x) ? x : null;

    void WritePlot()
    {
        if (plotPath is null || epochs.Count == 0) return;
        var plt = new ScottPlot.Plot();
        double[] xs = epochs.Select(e => (double)e.Epoch).ToArray();
        void Line(string name, Func<EpochReport, double?> f)
        {
            var ys = epochs.Select(e => f(e) ?? double.NaN).ToArray();
            if (ys.All(double.IsNaN)) return;
            var s = plt.Add.Scatter(xs, ys);
            s.LegendText = name;
        }
        Line("train loss", e => e.Train.Loss);
        Line("val loss", e => e.Validation?.Loss);
        Line("train accuracy", e => Nan(e.Train.Top1) ?? Nan(e.Train.MapAt100));
        Line("val accuracy", e => Nan(e.Validation?.Top1) ?? Nan(e.Validation?.MapAt100));
        plt.Title("Xception.Gpu training");
        plt.XLabel("epoch");
        plt.ShowLegend(ScottPlot.Alignment.UpperCenter);
        var png = plt.GetImageBytes(800, 500, ScottPlot.ImageFormat.Png);
        Xception.Gpu.IO.AtomicFile.Write(plotPath, s => s.Write(png));
    }
}
