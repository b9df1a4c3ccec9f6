using System.CommandLine;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Cli;

/// <summary>
/// The command line on System.CommandLine: generated help for every command, one-line parse errors with a
/// suggestion, both value spellings, flags that refuse values, tab completion, and every option name of the
/// contract below.
/// </summary>
public class ParserTests
{
    /// <summary>
    /// The option names (values, then flags) each of these commands accepts: scripts that use them must keep
    /// working, so a rename or removal fails here.
    /// </summary>
    static readonly Dictionary<string, (string[] Values, string[] Flags)> Contract = new()
    {
        ["devices"] = ([], ["help"]),
        ["bench"] = (["op", "batch", "image-size", "min-seconds", "model", "steps", "segments", "device", "devices", "cpu-threads", "distributed", "bucket-mb"],
            ["backward", "help", "sync-bn"]),
        ["summary"] = (["classes", "image-size", "pooling", "middle-blocks", "separable-activation", "segments"], ["no-top", "no-residual", "help"]),
        ["predict"] = (["weights", "device", "top", "image-size", "resize", "batch", "input", "output", "classes", "max-image-pixels"], ["logits", "help"]),
        ["features"] = (["weights", "pooling", "image-size", "device", "batch", "resize", "format", "input", "output", "max-image-pixels"], ["help"]),
        ["explain"] = (["weights", "device", "image-size", "resize", "batch", "input", "output", "heatmap", "class", "layer", "max-image-pixels"], ["help"]),
        ["train"] = (["data", "model", "classes", "image-size", "weights", "val-split", "recipe", "epochs", "steps", "batch", "seed",
                "optimizer", "lr", "momentum", "rho", "epsilon", "weight-decay", "dropout", "label-smoothing", "warmup-steps", "lr-schedule", "lr-decay",
                "lr-decay-epochs", "lr-decay-samples", "lr-steps", "freeze", "bn-mode", "checkpoint-dir", "checkpoint-every", "keep", "resume", "save",
                "log", "plot", "verify-every", "max-image-pixels", "device", "devices", "cpu-threads", "distributed", "bucket-mb"],
            ["no-augment", "strict", "nesterov", "new-head", "help", "sync-bn"]),
        ["eval"] = (["weights", "data", "split", "val-split", "seed", "batch", "device", "image-size", "max-image-pixels"], ["strict", "help"]),
        ["kernels"] = (["arch", "ptx"], ["help"]),
        ["study"] = (["data", "model", "image-size", "train-images", "test-images", "segments", "steps", "epochs",
            "eval-every", "seeds", "batch", "lr", "lr-schedule", "momentum", "weight-decay", "out", "device", "cpu-threads"], ["no-augment", "help"]),
        ["export"] = (["weights", "model", "pooling", "onnx", "h5", "safetensors", "image-size", "batch", "opset"], ["dynamic-size", "dynamic-batch", "logits", "help"]),
    };

    public static TheoryData<string> ContractCommands => new(Contract.Keys);

    public static TheoryData<string> AllCommands => new(Gpu.Cli.Cli.Root().Subcommands.Select(c => c.Name));

    [Theory]
    [MemberData(nameof(ContractCommands))]
    public void EveryOptionNameOfTheOldParserStillParses(string command)
    {
        var (values, flags) = Contract[command];
        foreach (var name in values)
        {
            foreach (var args in new[] { new[] { command, "--" + name, "v" }, [command, $"--{name}=v"] })
            {
                var result = Gpu.Cli.Cli.Root().Parse(args);
                Assert.True(result.Errors.Count == 0, $"{string.Join(' ', args)}: {string.Join("; ", result.Errors.Select(e => e.Message))}");
                Assert.Equal(["v"], result.GetResult(result.CommandResult.Command.Options.Single(o => o.Name == "--" + name))!.Tokens.Select(t => t.Value));
            }
        }
        foreach (var name in flags.Where(f => f != "help"))
        {
            var result = Gpu.Cli.Cli.Root().Parse([command, "--" + name]);
            Assert.True(result.Errors.Count == 0, $"{command} --{name}: {string.Join("; ", result.Errors.Select(e => e.Message))}");
            Assert.NotNull(result.GetResult(result.CommandResult.Command.Options.Single(o => o.Name == "--" + name)));
        }
        Assert.Equal(0, CliRun.Run(command, "--help").Code);
    }

    [Theory]
    [MemberData(nameof(AllCommands))]
    public void HelpOfEveryCommandListsEveryOption(string command)
    {
        var declared = Gpu.Cli.Cli.Root().Subcommands.Single(c => c.Name == command);
        foreach (var spelling in new[] { "--help", "-h" })
        {
            var (code, output) = CliRun.Run(command, spelling);
            Assert.Equal(0, code);
            // On a terminal the help is wrapped to its width: compare with blanks and line breaks as one space.
            var text = Words(output);
            Assert.Contains(Words(declared.Description!), text);
            foreach (var option in declared.Options.Where(o => o.Name != "--help"))
            {
                Assert.Contains(option.Name + (option.HelpName is { } v ? $" <{v}>" : ""), output);
                Assert.False(string.IsNullOrWhiteSpace(option.Description), $"{command} {option.Name} has no description");
                Assert.Contains(Words(option.Description!), text);
            }
        }
        Assert.Equal(CliRun.Run(command, "--help").Out, CliRun.Run("help", command).Out);
    }

    static string Words(string text) => string.Join(' ', text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    [Fact]
    public void TheRootHelpListsTheCommandsAndNoArgumentsIsAUsageMistake()
    {
        var (code, output) = CliRun.Run("--help");
        Assert.Equal(0, code);
        foreach (var command in Gpu.Cli.Cli.Root().Subcommands) Assert.Contains(command.Name, output);
        Assert.Contains("Device strings:", output);
        Assert.Equal((0, output), CliRun.Run("help"));
        Assert.Equal((2, output), CliRun.Run());
    }

    /// <summary>The error line is the whole output: no help dump after a mistake.</summary>
    static void OneLine(string expected, params string[] args)
    {
        var (code, output) = CliRun.Run(args);
        Assert.Equal(2, code);
        Assert.Equal(expected, output.TrimEnd('\n', '\r'));
    }

    [Fact]
    public void AMistypedOptionGetsASuggestion()
    {
        OneLine("xception: unknown option --bacth for 'train'; did you mean --batch? 'xception train --help' lists the options", "train", "--bacth", "3");
        // Among image files too: a word starting with "--" is an option, not a file name.
        OneLine("xception: unknown option --toop for 'predict'; did you mean --top? 'xception predict --help' lists the options",
            "predict", "a.png", "--toop", "3", "b.png");
        OneLine("xception: unknown option --poling for 'summary'; did you mean --pooling? 'xception summary --help' lists the options", "summary", "--poling", "avg");
        OneLine("xception: unknown option --zzzzzzzz for 'kernels'; 'xception kernels --help' lists the options", "kernels", "--zzzzzzzz");
    }

    [Fact]
    public void AnUnknownCommandGetsASuggestion()
    {
        const string commands = "commands: devices, bench, summary, predict, features, explain, train, eval, study, export, serve, serve-bench, kernels";
        OneLine($"xception: unknown command 'trian'; did you mean 'train'? {commands}", "trian");
        OneLine($"xception: unknown command 'trian'; did you mean 'train'? {commands}", "help", "trian");
        OneLine($"xception: unknown command 'frobnicate'; {commands}", "frobnicate");
    }

    [Fact]
    public void ValuesComeAsNameValueOrNameEqualsValueAndTheLastOneCounts()
    {
        // --arch is checked before any work: its message shows which value was read.
        OneLine("xception: --arch must be sm_80 or sm_90, got 'sm_70'", "kernels", "--arch", "sm_70");
        OneLine("xception: --arch must be sm_80 or sm_90, got 'sm_70'", "kernels", "--arch=sm_70");
        OneLine("xception: --arch must be sm_80 or sm_90, got 'sm_70'", "kernels", "--arch", "sm_90", "--arch=sm_70");
        OneLine("xception: --batch must be between 1 and 65536, got 0", "train", "--batch=0");
    }

    [Fact]
    public void MissingValuesFlagsWithValuesAndStrayArgumentsAreOneLine()
    {
        OneLine("xception: option --weights of 'predict' needs a value", "predict", "--weights");
        OneLine("xception: option --nesterov of 'train' takes no value", "train", "--nesterov=true");
        OneLine("xception: option --nesterov of 'train' takes no value", "train", "--nesterov", "true");
        OneLine("xception: option --logits of 'predict' takes no value", "predict", "--logits=yes", "a.png");
        OneLine("xception: 'train' takes no positional arguments, got 'x'; 'xception train --help' lists the options", "train", "x");
    }

    [Fact]
    public void ResponseFilesAddArguments()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp["args.rsp"], "--arch sm_70\n");
        OneLine("xception: --arch must be sm_80 or sm_90, got 'sm_70'", "kernels", "@" + tmp["args.rsp"]);
        OneLine($"xception: response file not found '{tmp["none.rsp"]}'", "kernels", "@" + tmp["none.rsp"]);
    }

    [Theory]
    [InlineData("train --ba", "--batch")]
    [InlineData("tr", "train")]
    [InlineData("summary --pooling ", "avg", "max", "none")]
    [InlineData("train --lr-schedule c", "constant", "cosine")]
    [InlineData("predict --resize ", "bilinear", "nearest")]
    public void CompletionsComeFromTheDeclarations(string line, params string[] expected)
    {
        var completions = Gpu.Cli.Cli.Root().Parse(line).GetCompletions().Select(c => c.Label).ToList();
        foreach (var e in expected) Assert.Contains(e, completions);
        // The way dotnet-suggest asks: the [suggest:position] directive and the whole line.
        var (code, output) = CliRun.Run($"[suggest:{line.Length}]", line);
        Assert.Equal(0, code);
        foreach (var e in expected) Assert.Contains(e, output.Split('\n', StringSplitOptions.TrimEntries));
    }
}
