using Xception.Gpu;
using Xception.Gpu.Cli;

return Cli.Run(args);

namespace Xception.Gpu.Cli
{
    public static class Cli
    {
        const string Usage = """
            xception: train and run Xception with ILGPU kernels on CUDA, OpenCL or the CPU.

            usage: xception <command> [options]

            commands:
              devices            list the accelerators this machine has (CUDA, OpenCL, CPU)
              bench              time the kernels on Xception's shapes (GFLOP/s, GB/s)
              summary            print the model as Keras' model.summary() does
              predict            classify images, or run a preprocessed .npy array, with Keras weights
              features           image embeddings (pooled block14, 2048 values) for transfer learning
              explain            Grad-CAM heatmaps: where in each image the evidence for a class lies
              train              train a model (no options: xception-mini on built-in synthetic images)
              eval               evaluate weights on a data set (loss, top-1, top-5 or MAP@100)
              study              the paper's experiments: residual, activation or segments variants trained side by side
              kernels            the GPU kernels' registers, shared memory, spills and occupancy (ptxas, no GPU)

            'xception <command> --help' describes a command's options.
            Device strings: auto (CUDA, else OpenCL, else CPU), cpu, cuda, cuda:N, opencl:N.
            """;

        public static int Run(string[] args)
        {
            // --max-image-pixels sets a process-wide limit: a run in a host process (the tests) leaves it as it was.
            long imageLimit = Imaging.ImageLoader.MaxPixels;
            try
            {
                if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
                {
                    Console.WriteLine(Usage);
                    return args.Length == 0 ? 2 : 0;
                }
                var rest = args.Skip(1).ToArray();
                return args[0] switch
                {
                    "devices" => DevicesCommand.Run(rest),
                    "bench" => BenchCommand.Run(rest),
                    "summary" => SummaryCommand.Run(rest),
                    "predict" => PredictCommand.Run(rest),
                    "features" => FeaturesCommand.Run(rest),
                    "explain" => ExplainCommand.Run(rest),
                    "train" => TrainCommand.Run(rest),
                    "eval" => EvalCommand.Run(rest),
                    "study" => StudyCommand.Run(rest),
                    "kernels" => KernelsCommand.Run(rest),
                    _ => throw new UsageException($"unknown command '{args[0]}'; commands: devices, bench, summary, predict, features, explain, train, eval, study, kernels"),
                };
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
    }
}
