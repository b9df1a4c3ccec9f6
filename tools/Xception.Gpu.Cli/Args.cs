namespace Xception.Gpu.Cli;

/// <summary>A usage mistake: printed as one line with a pointer to --help, exit code 2.</summary>
sealed class UsageException(string message) : Exception(message);

/// <summary>
/// Minimal option parser: <c>--name value</c>, <c>--name=value</c> and boolean <c>--flag</c>. Every option
/// must be declared by the command; anything else is a usage error naming the option.
/// </summary>
sealed class Args
{
    readonly Dictionary<string, string?> values = new();
    public List<string> Positional { get; } = new();

    public Args(IEnumerable<string> args, IReadOnlyCollection<string> options, IReadOnlyCollection<string> flags, string command)
    {
        var list = args.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            var a = list[i];
            if (!a.StartsWith("--")) { Positional.Add(a); continue; }
            var name = a[2..];
            string? value = null;
            int eq = name.IndexOf('=');
            if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
            if (flags.Contains(name))
            {
                if (value is not null) throw new UsageException($"option --{name} of '{command}' takes no value");
                values[name] = "true";
            }
            else if (options.Contains(name))
            {
                if (value is null)
                {
                    if (i + 1 >= list.Count) throw new UsageException($"option --{name} of '{command}' needs a value");
                    value = list[++i];
                }
                values[name] = value;
            }
            else throw new UsageException($"unknown option --{name} for '{command}'; 'xception {command} --help' lists the options");
        }
    }

    public bool Flag(string name) => values.ContainsKey(name);

    public string? String(string name) => values.TryGetValue(name, out var v) ? v : null;

    public string String(string name, string fallback) => String(name) ?? fallback;

    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        var s = String(name);
        if (s is null) return fallback;
        if (!int.TryParse(s, out var v)) throw new UsageException($"--{name} expects a whole number, got '{s}'");
        if (v < min || v > max) throw new UsageException($"--{name} must be between {min} and {max}, got {v}");
        return v;
    }

    public double Double(string name, double fallback, double min = double.MinValue, double max = double.MaxValue)
    {
        var s = String(name);
        if (s is null) return fallback;
        if (!double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v))
            throw new UsageException($"--{name} expects a number, got '{s}'");
        // NaN passes every range comparison; no option of this tool has a meaning for NaN or an infinity.
        if (!double.IsFinite(v)) throw new UsageException($"--{name} expects a finite number, got '{s}'");
        if (v < min || v > max) throw new UsageException($"--{name} must be between {min} and {max}, got {v}");
        return v;
    }

    /// <summary>Sets the image decoder's pixel limit from <c>--max-image-pixels</c>, when given.</summary>
    public void ApplyImageLimit()
    {
        if (String("max-image-pixels") is null) return;
        var s = String("max-image-pixels")!;
        if (!long.TryParse(s, System.Globalization.NumberStyles.AllowThousands, System.Globalization.CultureInfo.InvariantCulture, out var v) || v < 1)
            throw new UsageException($"--max-image-pixels expects a whole number of pixels >= 1, got '{s}'");
        Imaging.ImageLoader.MaxPixels = v;
    }

}
