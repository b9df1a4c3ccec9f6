// Times ONNX Runtime's CPU inference of an ONNX model written by 'xception export --onnx':
// one input (NHWC float32, Keras' 'tf' preprocessing range [-1, 1]), every output fetched.
//
//   dotnet run -c Release --project tools/peers/OnnxRunner -- --onnx m.onnx --batch 8 --image-size 299 --threads 2
//
// Prints ONNX Runtime's version, then one line:
//   onnxruntime-cpu inference  batch 8  299x299  threads 2: X img/s (Y ms/batch)
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;

var inv = CultureInfo.InvariantCulture;
string? onnx = null;
int batch = 8, size = 299, threads = Environment.ProcessorCount, warmup = 1, minIters = 3;
double seconds = 10;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--onnx": onnx = Next(); break;
        case "--batch": batch = int.Parse(Next(), inv); break;
        case "--image-size": size = int.Parse(Next(), inv); break;
        case "--threads": threads = int.Parse(Next(), inv); break;
        case "--seconds": seconds = double.Parse(Next(), inv); break;
        case "--warmup": warmup = int.Parse(Next(), inv); break;
        case "--min-iters": minIters = int.Parse(Next(), inv); break;
        case "-h" or "--help":
            Console.WriteLine("onnx-runner --onnx F [--batch 8] [--image-size 299] [--threads N] [--seconds 10] [--warmup 1] [--min-iters 3]");
            return 0;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}
if (onnx is null) { Console.Error.WriteLine("--onnx F is required"); return 2; }
if (batch < 1 || size < 1 || threads < 1 || minIters < 1) { Console.Error.WriteLine("batch, image size, threads and min-iters must be positive"); return 2; }

using var options = new SessionOptions
{
    IntraOpNumThreads = threads,
    InterOpNumThreads = 1,
    ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
    GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
};
using var session = new InferenceSession(onnx, options);
if (session.InputMetadata.Count != 1) { Console.Error.WriteLine($"{onnx}: expected one input, found {session.InputMetadata.Count}"); return 2; }
var (inputName, meta) = session.InputMetadata.First();
int[] declared = meta.Dimensions;
if (declared.Length != 4 || (declared[3] != 3 && declared[3] > 0))
{
    Console.Error.WriteLine($"{onnx}: input '{inputName}' is [{string.Join(", ", declared)}], expected NHWC (batch, height, width, 3)");
    return 2;
}
long[] want = [batch, size, size, 3];
long[] shape = new long[4];
for (int d = 0; d < 4; d++)
{
    if (declared[d] > 0 && declared[d] != want[d])
    {
        Console.Error.WriteLine($"{onnx}: input '{inputName}' is fixed at [{string.Join(", ", declared)}]; "
            + $"asked for batch {batch}, {size}x{size} (export with --dynamic-batch / --dynamic-size, or matching --batch / --image-size)");
        return 2;
    }
    shape[d] = want[d];
}

var data = new float[batch * size * size * 3];
var rng = new Random(0);
for (int k = 0; k < data.Length; k++) data[k] = (float)(rng.NextDouble() * 2 - 1);
using var input = OrtValue.CreateTensorValueFromMemory(data, shape);
string[] outputNames = session.OutputMetadata.Keys.ToArray();
using var runOptions = new RunOptions();

void RunOnce()
{
    using var outputs = session.Run(runOptions, [inputName], [input], outputNames);
}

for (int w = 0; w < warmup; w++) RunOnce();
var sw = Stopwatch.StartNew();
int iters = 0;
while (iters < minIters || sw.Elapsed.TotalSeconds < seconds)
{
    RunOnce();
    iters++;
}
sw.Stop();
double msPerBatch = sw.Elapsed.TotalMilliseconds / iters;
Console.WriteLine($"onnxruntime {OrtEnv.Instance().GetVersionString()}");
Console.WriteLine(string.Create(inv,
    $"onnxruntime-cpu inference  batch {batch}  {size}x{size}  threads {threads}: {batch * 1000.0 / msPerBatch:F2} img/s ({msPerBatch:F0} ms/batch, {iters} iterations)"));
return 0;
