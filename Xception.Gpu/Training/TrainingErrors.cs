namespace Xception.Gpu.Training;

/// <summary>
/// A training batch did not fit in device memory. The message names the batch size that would: training
/// memory is about (weights x 4: values, gradients, two optimizer slots) + batch x (activations per image).
/// </summary>
public sealed class TrainingOutOfMemoryException : DeviceException
{
    /// <param name="device">the device that ran out</param>
    /// <param name="batch">the batch that did not fit</param>
    /// <param name="deviceBytes">the device's memory</param>
    /// <param name="fixedBytes">weights, gradients and optimizer state</param>
    /// <param name="perImageBytes">activations and their gradients per image (0 when they could not be measured)</param>
    /// <param name="inner">the allocation failure</param>
    public TrainingOutOfMemoryException(string device, int batch, long deviceBytes, long fixedBytes, long perImageBytes, Exception? inner = null)
        : base(Describe(device, batch, deviceBytes, fixedBytes, perImageBytes, out int fits), inner)
    {
        Batch = batch;
        FittingBatch = fits;
    }

    /// <summary>The batch that did not fit.</summary>
    public int Batch { get; }

    /// <summary>The largest batch that should fit (90% of the device's memory), or 0 when not even one image does.</summary>
    public int FittingBatch { get; }

    static string Describe(string device, int batch, long deviceBytes, long fixedBytes, long perImageBytes, out int fits)
    {
        long usable = (long)(deviceBytes * 0.9) - fixedBytes;
        fits = perImageBytes <= 0 ? 0 : (int)Math.Max(0, usable / perImageBytes);
        return $"out of memory on {device} at batch {batch}: training needs about {perImageBytes >> 20} MiB per image " +
               $"plus {fixedBytes >> 20} MiB for weights, gradients and optimizer state; " +
               (fits >= 1 ? $"a batch of {fits} would fit in its {deviceBytes / (double)(1L << 30):F1} GiB" : "not even one image fits: use a smaller image size");
    }
}

/// <summary>Training stopped because the loss stopped being a number.</summary>
public sealed class NonFiniteLossException(string message) : XceptionException(message);

/// <summary>A checkpoint to resume from was not found: no such file, or a folder without checkpoints.</summary>
public sealed class CheckpointNotFoundException(string message) : XceptionException(message);

/// <summary>
/// A checkpoint to resume from was written by a run with other settings (batch, seed, optimizer or data):
/// continuing it would not be the same run.
/// </summary>
/// <param name="message">what differs</param>
/// <param name="setting">the setting that differs where one setting does ("freeze", "bn-mode"), else null</param>
public sealed class ResumeMismatchException(string message, string? setting = null) : XceptionException(message)
{
    /// <summary>The setting that differs ("freeze" for the frozen layers, "bn-mode" for the batch norm mode), or null.</summary>
    public string? Setting { get; } = setting;
}

/// <summary>A model's classifier and the data disagree on the number of classes.</summary>
/// <param name="message">what disagrees</param>
/// <param name="modelClasses">the classes of the model (or its weights)</param>
/// <param name="dataClasses">the classes of the data</param>
public sealed class ClassCountException(string message, int modelClasses, int dataClasses) : XceptionException(message)
{
    /// <summary>The classes of the model or its weights.</summary>
    public int ModelClasses { get; } = modelClasses;
    /// <summary>The classes of the data.</summary>
    public int DataClasses { get; } = dataClasses;
}
