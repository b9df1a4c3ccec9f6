// How a command is declared (System.CommandLine 2.0; the parser, help, suggestions and tab completion come from it):
//
//     static class StudyCommand
//     {
//         public static CliCommand Definition => new("study", "one line for the list in 'xception --help'", Run, """
//             The paragraphs 'xception study --help' prints under that line (usage forms, what the output means).
//             """)
//         {
//             Value("data", "D", "what --data takes (default synthetic:2500)"),   // --data D
//             Choice("pooling", ["avg", "max"], "what --pooling does (default avg)"), // --pooling avg|max, tab-completed
//             Flag("no-augment", "no random crop-and-scale or flips"),             // --no-augment, no value
//             Files("IMAGE", "the images"),     // only for a command that takes positional arguments
//             ReplicaOptions.Group,         // a shared group: ModelOptions.Group, ReplicaOptions.Group
//         };
//
//         static int Run(Args a) { ... a.String("data", "synthetic:2500"), a.Int("batch", 32, 1, 65536), a.Flag("no-augment"), a.Positional ... }
//     }
//
// and one line in Cli.Commands (Program.cs). "help" is built in. Values stay strings until Run reads them through Args' typed
// accessors, so every check keeps its message ("--batch must be between 1 and 65536, got 0"); Choice's values
// are for help and completion, and Run still checks them (case-insensitively, with its own message).
global using static Xception.Gpu.Cli.OptionBuilders;

using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;

namespace Xception.Gpu.Cli;

/// <summary>A subcommand of `xception`: its options (System.CommandLine symbols), its help text and what runs it.</summary>
sealed class CliCommand : Command
{
    /// <param name="name">the command's word, e.g. "train"</param>
    /// <param name="summary">one line: the list in 'xception --help' and the first line of the command's help</param>
    /// <param name="run">the command's body; the options come as <see cref="Args"/></param>
    /// <param name="details">paragraphs printed under the summary in the command's help</param>
    public CliCommand(string name, string summary, Func<Args, int> run, string? details = null) : base(name, summary)
    {
        Body = run;
        Details = details?.TrimEnd();
    }

    public Func<Args, int> Body { get; }
    public string? Details { get; }

    /// <summary>Adds a shared group of options (<c>ReplicaOptions.Group</c>) in a collection initializer.</summary>
    public void Add(IEnumerable<Symbol> group)
    {
        foreach (var symbol in group)
        {
            switch (symbol)
            {
                case Option o: Add(o); break;
                case Argument a: Add(a); break;
                default: throw new ArgumentException($"'{Name}': {symbol.GetType().Name} is neither an option nor an argument");
            }
        }
    }

    /// <summary>The positional argument, when the command takes one.</summary>
    public Argument<string[]>? Positional => Arguments.OfType<Argument<string[]>>().FirstOrDefault();

    /// <summary>A flag: an option that takes no value.</summary>
    public static bool IsFlag(Option o) => o.ValueType == typeof(bool);
}

/// <summary>The kinds of options and arguments the commands declare (used unqualified: <c>global using static</c>).</summary>
static class OptionBuilders
{
    /// <summary>
    /// <c>--name VALUE</c> or <c>--name=VALUE</c>, kept as text for <see cref="Args"/> to check. Given twice, the last
    /// one counts: a script can append an override.
    /// </summary>
    public static Option<string[]> Value(string name, string helpName, string description) =>
        new("--" + name) { HelpName = helpName, Description = description, AllowMultipleArgumentsPerToken = false };

    /// <summary><c>--device D</c>: the same words for every command that runs on a device.</summary>
    public static Option<string[]> DeviceOption() => Value("device", "D", "auto (default), cpu, cuda, cuda:N, opencl:N");

    /// <summary>
    /// A value from a known list: help shows <c>--name &lt;a|b|c&gt;</c> and tab completion offers the values.
    /// <paramref name="helpName"/> replaces the list in help when other values are allowed too (a layer name) or
    /// when the list is long (the description then names the values).
    /// </summary>
    public static Option<string[]> Choice(string name, string[] values, string description, string? helpName = null)
    {
        var option = Value(name, helpName ?? string.Join('|', values), description);
        option.CompletionSources.Add(values);
        return option;
    }

    /// <summary><c>--name</c>, on or off; <c>--name=x</c> or <c>--name true</c> is refused (Args says so).</summary>
    public static Option<bool> Flag(string name, string description) => new("--" + name) { Description = description };

    /// <summary>
    /// The positional arguments (image files). A word that starts with "--" ends them, so that a mistyped option is
    /// reported as one (with a suggestion) and not taken for a file name; a file whose name starts with "--" is
    /// given as ./--name.
    /// </summary>
    public static Argument<string[]> Files(string helpName, string description) => new(helpName)
    {
        Description = description,
        Arity = ArgumentArity.ZeroOrMore,
        CustomParser = result =>
        {
            int n = 0;
            while (n < result.Tokens.Count && !result.Tokens[n].Value.StartsWith("--", StringComparison.Ordinal)) n++;
            if (n < result.Tokens.Count) result.OnlyTake(n);
            return result.Tokens.Take(n).Select(t => t.Value).ToArray();
        },
    };
}

/// <summary>
/// A parse that failed, as one line in the tool's style: unknown options and commands (with System.CommandLine's
/// suggestion), missing values, values given to flags, stray arguments. Never the whole help.
/// </summary>
static class ParseProblems
{
    /// <summary>The first problem of <paramref name="result"/>, or null when there is none.</summary>
    public static string? First(ParseResult result, IReadOnlyList<string> args)
    {
        var command = result.CommandResult.Command;
        if (command is not CliCommand cli)
        {
            var word = result.UnmatchedTokens.FirstOrDefault();
            if (word is null)
                return result.Errors.Count == 0 ? null : Plain(result.Errors[0].Message);
            return $"unknown command '{word}';{DidYouMean(result.RootCommandResult.Command, word, quote: true)} commands: " +
                   string.Join(", ", result.RootCommandResult.Command.Subcommands.Select(c => c.Name));
        }
        string name = cli.Name;
        if (FlagWithValue(result, args, cli) is { } flag) return $"option {flag} of '{name}' takes no value";
        foreach (var word in result.UnmatchedTokens)
        {
            if (word.Length > 1 && word[0] == '-')
                return $"unknown option {word} for '{name}';{DidYouMean(cli, word, quote: false)} 'xception {name} --help' lists the options";
        }
        foreach (var error in result.Errors)
        {
            if (error.SymbolResult is OptionResult { Tokens.Count: 0 } o && !CliCommand.IsFlag(o.Option))
                return $"option {o.Option.Name} of '{name}' needs a value";
        }
        if (result.UnmatchedTokens.FirstOrDefault() is { } stray)
            return $"'{name}' takes no positional arguments, got '{stray}'; 'xception {name} --help' lists the options";
        return result.Errors.Count == 0 ? null : Plain(result.Errors[0].Message);
    }

    /// <summary>
    /// The flag given a value, as <c>--flag=x</c> (seen in the words as typed: the parser splits it) or
    /// <c>--flag true</c> (a boolean option takes a following true/false).
    /// </summary>
    static string? FlagWithValue(ParseResult result, IReadOnlyList<string> args, CliCommand command)
    {
        var flags = command.Options.Where(CliCommand.IsFlag).ToList();
        foreach (var arg in args.TakeWhile(a => a != "--"))
        {
            int eq = arg.IndexOf('=');
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 2 && flags.Any(f => f.Name == arg[..eq])) return arg[..eq];
        }
        return flags.Select(result.GetResult).OfType<OptionResult>().FirstOrDefault(r => r.Tokens.Count > 0)?.Option.Name;
    }

    /// <summary>
    /// " did you mean --batch?" when System.CommandLine's typo correction (edit distance up to 3 over the command's
    /// options and subcommands) has a candidate, else "". That correction is not public API, only the text its
    /// parse-error action prints: the action is asked about the one word, without its help and error lines, and the
    /// lines of its output that name a symbol of the command are the candidates.
    /// </summary>
    static string DidYouMean(Command command, string word, bool quote)
    {
        var root = command.Parents.OfType<Command>().FirstOrDefault() ?? command;
        var probe = root.Parse(root == command ? [word] : [command.Name, word], new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (probe.Action is not ParseErrorAction action) return "";
        action.ShowHelp = false;
        action.ShowTypoCorrections = true;
        var output = new StringWriter();
        probe.Invoke(new InvocationConfiguration { Output = output, Error = TextWriter.Null, EnableDefaultExceptionHandler = false });
        var names = command.Children.Where(s => !s.Hidden).SelectMany(s => s switch
        {
            Option o => [o.Name, .. o.Aliases],
            Command c => [c.Name, .. c.Aliases],
            _ => Array.Empty<string>(),
        }).ToHashSet(StringComparer.Ordinal);
        var candidates = output.ToString().Split('\n').Select(l => l.Trim()).Where(names.Contains).Distinct().ToList();
        if (candidates.Count == 0) return "";
        var said = candidates.Select(c => quote ? $"'{c}'" : c).ToList();
        return " did you mean " + (said.Count == 1 ? said[0] : string.Join(", ", said[..^1]) + " or " + said[^1]) + "?";
    }

    /// <summary>System.CommandLine's own message ("Response file not found 'x'.") in the tool's style.</summary>
    static string Plain(string message)
    {
        var line = message.Split('\n')[0].Trim().TrimEnd('.');
        return line.Length == 0 ? "the command line could not be parsed" : char.ToLowerInvariant(line[0]) + line[1..];
    }
}

/// <summary>
/// Help as System.CommandLine writes it, with the command's <see cref="CliCommand.Details"/> after its one-line
/// description (System.CommandLine 2.0 keeps its help layout internal, so the paragraphs are set in its output).
/// </summary>
static class HelpText
{
    public static string Write(string generated, string? details)
    {
        if (string.IsNullOrWhiteSpace(details)) return generated;
        var indented = string.Join('\n', details.Split('\n').Select(l => l.Length == 0 ? "" : "  " + l.TrimEnd('\r')));
        var text = generated.Replace("\r\n", "\n");
        int end = text.IndexOf("\n\n", StringComparison.Ordinal);
        return end < 0 ? text + "\n" + indented + "\n" : text[..end] + "\n\n" + indented + text[end..];
    }
}
