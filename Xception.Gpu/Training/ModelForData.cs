using Xception.Gpu.Data;
using Xception.Gpu.Imaging;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;

namespace Xception.Gpu.Training;

/// <summary>The configuration a training run starts from when no weights say otherwise: a named model shaped by its data.</summary>
public static class ModelForData
{
    /// <summary>
    /// <paramref name="name"/> (see <see cref="ModelPresets"/>) for <paramref name="source"/>: its classes; for the mini
    /// model also the size of the first readable image (its side when square, else 32) and its channels; xception at
    /// 299 x 299 RGB. <paramref name="imageSize"/> overrides the size.
    /// </summary>
    public static XceptionConfig Config(string name, IDataSource source, int? imageSize = null)
    {
        XceptionConfig config;
        if (name.ToLowerInvariant() == ModelPresets.Mini)
        {
            var first = FirstReadable(source);
            config = ModelPresets.Config(name, first.Width == first.Height ? first.Width : 32, first.Channels, source.Classes);
        }
        else config = ModelPresets.Config(name, classes: source.Classes);
        if (imageSize is { } s) config = config with { ImageSize = s };
        return config.Validate();
    }

    /// <summary>
    /// The configuration of a run that starts from the weights in <paramref name="path"/> on data with
    /// <paramref name="classes"/> classes: the file's model. With <paramref name="newHead"/>, the file's base with a
    /// fresh classifier for the data's classes, whatever top the file has; without, a file with a classifier must have
    /// the data's classes (<see cref="ClassCountException"/>).
    /// </summary>
    public static XceptionConfig FromWeights(string path, int classes, bool newHead)
    {
        var config = ModelWeights.ConfigOf(path, new XceptionConfig { Classes = classes });
        if (newHead) return config with { IncludeTop = true, Pooling = GlobalPooling.None, Classes = classes };
        if (config.IncludeTop && config.Classes != classes)
            throw new ClassCountException($"'{path}' has {config.Classes} classes, the data {classes}", config.Classes, classes);
        return config;
    }

    /// <summary>
    /// The first image that can be read; the first few unreadable ones are skipped as training skips them, and a
    /// data set whose first 20 cannot be read is refused.
    /// </summary>
    public static RawImage FirstReadable(IDataSource source)
    {
        const int Tries = 20;
        if (source.Count == 0) throw new DataException(source.Description, $"the data set {source.Description} has no images");
        ImageException? error = null;
        for (int i = 0; i < Math.Min(Tries, source.Count); i++)
        {
            try { return source.Load(i); }
            catch (ImageException e) { error ??= e; }
        }
        throw new DataException(source.Description, $"none of the first {Math.Min(Tries, source.Count)} images of the data could be read (the first: {error!.Message}): nothing to train on");
    }
}
