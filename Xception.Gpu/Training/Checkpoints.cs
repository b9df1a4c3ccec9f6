using System.Globalization;
using System.Text.Json;
using Xception.Gpu.Graph;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;

namespace Xception.Gpu.Training;

/// <summary>
/// Training checkpoints: the model's weights and batch-norm statistics, the optimizer's state, the
/// position (epoch, batch, step, samples) and the running metrics of the epoch in progress, in one
/// safetensors file written atomically. Named ckpt-STEP.safetensors; the newest K are kept.
/// </summary>
public static class Checkpoints
{
    const string StateKey = "train_state";

    /// <summary>The run's state besides the tensors.</summary>
    /// <param name="Position">where the run stands: epoch, batch, step, samples</param>
    /// <param name="Running">the running metric sums of the epoch in progress</param>
    /// <param name="Batch">the global batch size</param>
    /// <param name="Seed">the run's seed</param>
    /// <param name="Optimizer">the optimizer's name</param>
    /// <param name="Data">the data set's description, checked when resuming</param>
    /// <param name="Frozen">the frozen layers' names (<see cref="Model.FrozenLayers"/>); null in checkpoints without frozen layers</param>
    /// <param name="BatchNormMode">the model's <see cref="Graph.BatchNormMode"/> by name; null where the file does not record it</param>
    public sealed record State(TrainPosition Position, double[] Running, int Batch, int Seed, string Optimizer, string Data,
        string[]? Frozen = null, string? BatchNormMode = null);

    /// <summary>The training state of a checkpoint, without reading its tensors (to compare a run's settings before building anything).</summary>
    public static State ReadState(string path)
    {
        var header = SafeTensors.ReadHeader(path);
        if (!header.Metadata.TryGetValue(StateKey, out var json))
            throw new WeightsException($"'{path}' holds weights but no training state: it can give a new run its initial weights, but there is no run to continue");
        return ParseState(path, json);
    }

    /// <summary>
    /// Puts a checkpoint's frozen layers and batch norm mode on <paramref name="model"/>; a checkpoint from before
    /// freezing existed leaves the model as it is.
    /// </summary>
    public static void ApplyTrainingMode(State state, Model model)
    {
        if (state.Frozen is not null) model.SetFrozen(state.Frozen);
        if (state.BatchNormMode is not null) model.BatchNormMode = Enum.Parse<BatchNormMode>(state.BatchNormMode);
    }

    /// <summary>
    /// Continues a run's training mode on <paramref name="model"/> from its checkpoint's state. Where the caller set the
    /// frozen layers (<paramref name="frozenGiven"/>) or the batch norm mode (<paramref name="modeGiven"/>) on the model,
    /// they must be the run's: the weights and the optimizer state belong to what the run froze
    /// (<see cref="ResumeMismatchException"/>, its <see cref="ResumeMismatchException.Setting"/> "freeze" or "bn-mode").
    /// Then the checkpoint's are applied.
    /// </summary>
    public static void ResumeTrainingMode(State state, Model model, bool frozenGiven, bool modeGiven, string checkpoint)
    {
        if (frozenGiven && state.Frozen is { } was && !was.SequenceEqual(model.FrozenLayers))
            throw new ResumeMismatchException($"this run freezes {model.FrozenLayers.Count} layers, but the run in '{checkpoint}' froze {was.Length}" +
                                              (was.Length > 0 ? $" (up to {was[^1]})" : ""), "freeze");
        string now = model.BatchNormMode.ToString();
        if (modeGiven && state.BatchNormMode is { } mode && !mode.Equals(now, StringComparison.OrdinalIgnoreCase))
            throw new ResumeMismatchException($"this run's batch norm mode is {now.ToLowerInvariant()}, but the run in '{checkpoint}' used {mode.ToLowerInvariant()}", "bn-mode");
        ApplyTrainingMode(state, model);
    }

    public static string Save(string dir, Model model, XceptionConfig config, OptimizerState optimizer, State state, int keep)
    {
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, $"ckpt-{state.Position.Step:D8}.safetensors");
        var meta = new Dictionary<string, string> { [StateKey] = JsonSerializer.Serialize(state) };
        ModelWeights.Save(model, config, path, meta, optimizer.Export());
        foreach (var old in List(dir).SkipLast(Math.Max(keep, 1))) File.Delete(old);
        return path;
    }

    /// <summary>Checkpoint files in a folder, oldest first.</summary>
    public static IReadOnlyList<string> List(string dir) =>
        Directory.Exists(dir)
            ? Directory.GetFiles(dir, "ckpt-*.safetensors").OrderBy(StepOf).ToList()
            : [];

    static long StepOf(string path)
    {
        var name = Path.GetFileNameWithoutExtension(path);
        return long.TryParse(name.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : -1;
    }

    /// <summary>A checkpoint file, or the newest one in a folder.</summary>
    /// <exception cref="CheckpointNotFoundException">the folder holds no checkpoint, or the path is neither a file nor a folder</exception>
    public static string Resolve(string pathOrDir)
    {
        if (File.Exists(pathOrDir)) return pathOrDir;
        if (Directory.Exists(pathOrDir))
            return List(pathOrDir).LastOrDefault() ?? throw new CheckpointNotFoundException($"checkpoint folder '{pathOrDir}' has no checkpoint (ckpt-*.safetensors)");
        throw new CheckpointNotFoundException($"'{pathOrDir}' is neither a checkpoint file nor a folder of checkpoints");
    }

    /// <summary>
    /// Restores weights and optimizer state into a bound model; returns the saved state. The file is read
    /// once and all of it (weights, optimizer state, training state) is checked before anything is set.
    /// </summary>
    public static State Load(string path, Model model, OptimizerState optimizer)
    {
        var (tensors, meta) = SafeTensors.Read(path);
        if (!meta.TryGetValue(StateKey, out var json))
            throw new WeightsException($"'{path}' holds weights but no training state: it can give a new run its initial weights, but there is no run to continue");
        var state = ParseState(path, json);
        var setWeights = ModelWeights.Prepare(model, path, tensors, meta);
        var setOptimizer = optimizer.Prepare(tensors.ToDictionary(t => t.Name), path);
        setWeights();
        setOptimizer();
        return state;
    }

    /// <summary>The training state in the metadata, with every field present and in range; else one line naming the file.</summary>
    static State ParseState(string path, string json)
    {
        State? s;
        try
        {
            s = JsonSerializer.Deserialize<State>(json, StateJson);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException or ArgumentException)
        {
            throw new WeightsException($"'{path}': its training state ({StateKey}) is not valid: {string.Concat(e.Message.Select(c => char.IsControl(c) ? ' ' : c))}", e);
        }
        string? bad = s switch
        {
            null => "it is empty (JSON null)",
            { Position: null } => "it has no Position",
            { Position: { Epoch: < 0 } or { Batch: < 0 } or { Step: < 0 } or { Samples: < 0 } } => $"its position {s.Position} has a negative field",
            { Running: null } or { Running.Length: not 6 } => $"Running holds {s.Running?.Length ?? 0} values, expected 6 (the running metrics)",
            { Batch: < 1 } => $"its batch is {s.Batch}, expected at least 1",
            { Optimizer: null } => "it has no Optimizer",
            { Data: null } => "it has no Data",
            { BatchNormMode: { } mode } when !Enum.TryParse<BatchNormMode>(mode, out _) || int.TryParse(mode, out _) =>
                $"its BatchNormMode is '{mode}', expected one of {string.Join(", ", Enum.GetNames<BatchNormMode>())}",
            _ => null,
        };
        if (bad is not null) throw new WeightsException($"'{path}': its training state ({StateKey}) is not valid: {bad}");
        return s!;
    }

    static readonly JsonSerializerOptions StateJson = new() { AllowDuplicateProperties = false };
}
