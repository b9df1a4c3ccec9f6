using System.Globalization;
using System.Text.Json;
using Xception.Gpu.Graph;
using Xception.Gpu.IO;
using Xception.Gpu.Models;

namespace Xception.Gpu.Training;

/// <summary>
/// Training checkpoints: the model's weights and batch-norm statistics, the optimizer's state, the
/// position (epoch, batch, step, samples) and the running metrics of the epoch in progress, in one
/// safetensors file written atomically. Named ckpt-STEP.safetensors; the newest K are kept.
/// </summary>
public static class Checkpoints
{
    const string StateKey = "train_state";

    public sealed record State(TrainPosition Position, double[] Running, int Batch, int Seed, string Optimizer, string Data);

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
    public static string Resolve(string pathOrDir)
    {
        if (File.Exists(pathOrDir)) return pathOrDir;
        if (Directory.Exists(pathOrDir))
            return List(pathOrDir).LastOrDefault() ?? throw new XceptionException($"--resume: folder '{pathOrDir}' has no checkpoint (ckpt-*.safetensors)");
        throw new XceptionException($"--resume: '{pathOrDir}' is neither a checkpoint file nor a folder of checkpoints");
    }

    /// <summary>Restores weights and optimizer state into a bound model; returns the saved state.</summary>
    public static State Load(string path, Model model, OptimizerState optimizer)
    {
        ModelWeights.Load(model, path);
        var (tensors, meta) = SafeTensors.Read(path);
        if (!meta.TryGetValue(StateKey, out var json))
            throw new WeightsException($"'{path}' holds weights but no training state: use it as --weights to start a new run");
        optimizer.Import(tensors.ToDictionary(t => t.Name), path);
        return JsonSerializer.Deserialize<State>(json) ?? throw new WeightsException($"'{path}': empty training state");
    }
}
