using Xception.Gpu.Architecture;

namespace Xception.Gpu.Cli;

/// <summary>--model, read the same way by every command that takes it (the names are <see cref="ModelPresets"/>'s).</summary>
static class ModelOption
{
    /// <summary>The model name given, lower-cased, or <paramref name="fallback"/>; a usage error for any other word.</summary>
    public static string Read(Args a, string fallback)
    {
        var name = a.String("model", fallback).ToLowerInvariant();
        if (!ModelPresets.IsName(name)) throw new UsageException($"--model must be {string.Join(" or ", ModelPresets.Names.Reverse())}, got '{name}'");
        return name;
    }

    /// <summary>The named model at --image-size (16 to 4096 for the mini model, 71 to 4096 for xception), with its default classes.</summary>
    public static XceptionConfig Config(Args a, string fallback)
    {
        var name = Read(a, fallback);
        int? size = a.String("image-size") is null ? null : a.Int("image-size", 0, name == ModelPresets.Mini ? 16 : 71, 4096);
        return ModelPresets.Config(name, size);
    }
}
