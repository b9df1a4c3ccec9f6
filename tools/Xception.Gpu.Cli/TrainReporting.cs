using Spectre.Console;
using Xception.Gpu.Training;

namespace Xception.Gpu.Cli;

/// <summary>
/// What a person sees while training: a Spectre.Console progress bar with ETA, images/s, loss and accuracy
/// on a terminal; a line every few seconds when the output is a file or a pipe. Also writes the per-epoch
/// log (<see cref="TrainingLog"/>: JSON lines, or CSV for a .csv path) and the curves (<see cref="Plots.Curves"/>).
/// </summary>
sealed class TrainReporting : ITrainingObserver
{
    readonly TrainingLog log;
    readonly string plotPath;
    readonly bool interactive = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
    ProgressTask? task;
    long totalSteps;
    DateTime lastLine = DateTime.MinValue;
    readonly System.Diagnostics.Stopwatch clock = System.Diagnostics.Stopwatch.StartNew();
    long firstStep;

    /// <param name="logPath">the run's log (JSON lines, or CSV by its extension)</param>
    /// <param name="plotPath">the curves (PNG)</param>
    /// <param name="resumedAt">the step of the checkpoint the run resumes from (the log keeps the rows up to it), or null for a new run (the log is appended to)</param>
    public TrainReporting(string logPath, string plotPath, long? resumedAt)
    {
        log = new TrainingLog(logPath);
        this.plotPath = plotPath;
        if (resumedAt is { } step) Try(ref logFailed, "the log", logPath, () => log.KeepUpTo(step));
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
        var t = r.Train;
        string train = double.IsNaN(t.Top1) ? $"MAP@100 {t.MapAt100:P2}" : $"acc {t.Top1:P2}";
        string val = r.Validation is { } v ? (double.IsNaN(v.Top1) ? $"  val_loss {v.Loss:F4}  val_MAP@100 {v.MapAt100:P2}" : $"  val_loss {v.Loss:F4}  val_acc {v.Top1:P2}  val_top5 {v.Top5:P2}") : "";
        Say($"epoch {r.Epoch}: loss {t.Loss:F4}  {train}{val}  ({r.Seconds:F1} s, {r.ImagesPerSecond:F1} img/s)");
        // After training started, a log or plot that cannot be written is a warning (once each): the run and
        // its checkpoints matter more.
        if (logFailed) log.Add(r);
        else Try(ref logFailed, "the log", log.Path, () => log.Append(r));
        Try(ref plotFailed, "the plot", plotPath, () => Plots.Curves(log.Rows, plotPath));
    }

    bool logFailed, plotFailed;

    void Try(ref bool failed, string what, string path, Action write)
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
}
