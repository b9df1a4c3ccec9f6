using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Xception.Gpu;
using Xception.Gpu.Cli;

return Cli.Run(args);

namespace Xception.Gpu.Cli
{
    public static class Cli
    {
        /// <summary>The commands, in the order 'xception --help' lists them. A new command is one line here (see CommandLine.cs).</summary>
        static IEnumerable<CliCommand> Commands() =>
        [
            DevicesCommand.Definition,
            BenchCommand.Definition,
            SummaryCommand.Definition,
            PredictCommand.Definition,
            FeaturesCommand.Definition,
            ExplainCommand.Definition,
            TrainCommand.Definition,
            EvalCommand.Definition,
            StudyCommand.Definition,
            ExportCommand.Definition,
            Serving.ServeCommand.Definition,
            Serving.ServeBenchCommand.Definition,
            KernelsCommand.Definition,
        ];

        const string Details = """
            'xception <command> --help' describes a command's options; 'xception help <command>' too.
            Device strings: auto (CUDA, else OpenCL, else CPU), cpu, cuda, cuda:N, opencl:N.
            An argument @FILE stands for the words in FILE (a response file; a line starting with # is a comment).
            Tab completion: see "The command line" in the README (dotnet-suggest).
            """;

        /// <summary>
        /// The whole command tree, built afresh for each run (System.CommandLine's symbols hold parse-time state):
        /// the root's help, --version and the [suggest] directive (tab completion through dotnet-suggest) are
        /// System.CommandLine's defaults. Public for the tests, which parse and complete with it.
        /// </summary>
        public static RootCommand Root()
        {
            var root = new RootCommand("xception: train and run Xception with ILGPU kernels on CUDA, OpenCL or the CPU.");
            foreach (var command in Commands()) root.Add(command);
            return root;
        }

        public static int Run(string[] args)
        {
            // --max-image-pixels sets a process-wide limit: a run in a host process (the tests) leaves it as it was.
            long imageLimit = Imaging.ImageLoader.MaxPixels;
            try
            {
                // No arguments: the usage, as a mistake (exit 2). 'help' and 'help <command>' are --help's other spellings.
                if (args.Length == 0) return Help([], 2);
                if (args[0] == "help") return Help(args[1..], 0);
                var root = Root();
                var result = root.Parse(args);
                if (result.Action is null or ParseErrorAction)
                {
                    if (ParseProblems.First(result, args) is { } problem) throw new UsageException(problem);
                    // A command's options and arguments parsed: its body runs (the commands have no System.CommandLine action).
                    if (result.CommandResult.Command is CliCommand command) return command.Body(new Args(result, command));
                    throw new UsageException("the command line could not be parsed; 'xception --help' lists the commands");
                }
                // Help, --version and [suggest]: System.CommandLine's actions.
                var output = new StringWriter();
                int code = result.Invoke(new InvocationConfiguration { Output = output, Error = Console.Error, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
                Console.Out.Write(result.Action is HelpAction ? HelpText.Write(output.ToString(), DetailsOf(result.CommandResult.Command)) : output.ToString());
                return code;
            }
            catch (UsageException e)
            {
                Console.Error.WriteLine($"xception: {e.Message}");
                return 2;
            }
            catch (XceptionException e)
            {
                Console.Error.WriteLine($"xception: error: {e.Message}");
                if (Environment.GetEnvironmentVariable("XCEPTION_DEBUG") == "1") Console.Error.WriteLine(e);
                return 1;
            }
            catch (Exception e)
            {
                // Not a bare stack trace: one line, and the trace only when asked for.
                Console.Error.WriteLine($"xception: internal error: {e.GetType().Name}: {e.Message} (set XCEPTION_DEBUG=1 for the stack trace)");
                if (Environment.GetEnvironmentVariable("XCEPTION_DEBUG") == "1") Console.Error.WriteLine(e);
                return 3;
            }
            finally
            {
                Imaging.ImageLoader.MaxPixels = imageLimit;
            }
        }

        /// <summary>The help of the root (<paramref name="command"/> empty) or of a command, exiting with <paramref name="code"/>.</summary>
        static int Help(string[] command, int code)
        {
            // An unknown command word is reported as one (with a suggestion), not answered with the root's help.
            if (command.Length > 0 && !Commands().Any(c => c.Name == command[0])) return Run(command[..1]);
            int shown = Run([.. command.Take(1), "--help"]);
            return shown == 0 ? code : shown;
        }

        static string? DetailsOf(Command command) => command is CliCommand c ? c.Details : Details;
    }
}
