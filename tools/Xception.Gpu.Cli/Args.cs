using System.CommandLine;
using System.CommandLine.Parsing;

namespace Xception.Gpu.Cli;

/// <summary>A usage mistake: printed as one line with a pointer to --help, exit code 2.</summary>
sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The options a command was given, read by name: the declared options' last values as text (the typed accessors
/// check them and name the option in their messages), the flags that are on, and the positional arguments.
/// System.CommandLine parses (CommandLine.cs); this is the thin view the command bodies read.
/// </summary>
sealed class Args
{
    readonly Dictionary<string, string?> values = new();
    readonly HashSet<string> declared = new();
    readonly string command;
    public List<string> Positional { get; } = new();

    public Args(ParseResult result, CliCommand command)
    {
        this.command = command.Name;
        foreach (var option in command.Options)
        {
            var name = option.Name.TrimStart('-');
            declared.Add(name);
            if (result.GetResult(option) is not OptionResult { Implicit: false } r) continue;
            if (CliCommand.IsFlag(option))
            {
                if (r.Tokens.Count > 0) throw new UsageException($"option --{name} of '{command.Name}' takes no value");
                values[name] = "true";
            }
            else if (r.Tokens.Count > 0) values[name] = r.Tokens[^1].Value;
            else throw new UsageException($"option --{name} of '{command.Name}' needs a value");
        }
        if (command.Positional is { } positional && result.GetValue(positional) is { } words) Positional.AddRange(words);
    }

    public bool Flag(string name) => Read(name) is not null;

    public string? String(string name) => Read(name);

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

    /// <summary>An option's text; asking for one the command does not declare is a bug in the command, not the user's.</summary>
    string? Read(string name)
    {
        if (!declared.Contains(name)) throw new InvalidOperationException($"'{command}' reads --{name}, which it does not declare");
        return values.TryGetValue(name, out var v) ? v : null;
    }
}
