using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Xception.Gpu.Imaging;
using Xception.Gpu.Inference;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;

namespace Xception.Gpu.Cli;

static class FeaturesCommand
{
    public static CliCommand Definition => new("features", "image embeddings (pooled block14, 2048 values) for transfer learning", Run, """
        xception features --weights W [--pooling avg|max] [--image-size S] [--device D] [--batch N]
                          [--resize bilinear|nearest] [--format npy|csv|jsonl] IMAGE... --output F
        xception features --weights W [--pooling avg|max] [--device D] [--batch N]
                          [--format npy|csv|jsonl] --input X.npy --output F

        Image embeddings for transfer learning: the global average (default) or maximum of block14's
        activation, one vector per image (2048 values for Xception), as Keras'
        Xception(include_top=False, pooling=...). W is a Keras weight file with or without the classifier
        (_notop) or an Xception.Gpu checkpoint; the classifier is not used.

        With images (JPEG, PNG, ...): decoded to RGB, resized to S x S (default 299, or the checkpoint's;
        bilinear, or nearest as Keras' load_img), preprocessed as Keras' 'tf' mode (x / 127.5 - 1). With
        --input: an already preprocessed NHWC float32 array (N, S, S, channels).

        Output formats (default from F's extension: .csv, .jsonl, else npy):
          npy     (N, C) float32, a row per image read, in the order given
          csv     a header line 'image,f0,...', then a line per image: its path (its index with --input)
                  and its C values
          jsonl   a line per image: {"image": path or "index": i, "features": [...]}
        An image that cannot be read is one line on stderr and has no row; the exit code is then 1.
        """)
    {
        Files("IMAGE", "image files (JPEG, PNG, ...)"),
        Value("weights", "W", "a Keras .h5 (with or without the classifier) or an Xception.Gpu checkpoint (required)"),
        Value("output", "F", "where the features go: .npy, .csv or .jsonl (required)"),
        Choice("pooling", ["avg", "max"], "global pooling of block14's activation (default avg)"),
        Choice("format", ["npy", "csv", "jsonl"], "output format (default from F's extension, else npy)"),
        Value("image-size", "S", "input size S x S (default 299, or the checkpoint's)"),
        DeviceOption(),
        PrecisionOption.Declare(),
        Value("batch", "N", "images per forward pass (default 16)"),
        Choice("resize", ["bilinear", "nearest"], "how images are resized (default bilinear; nearest as Keras' load_img)"),
        Value("input", "X.npy", "a preprocessed NHWC float32 array (N, S, S, channels) instead of images"),
        Value("max-image-pixels", "N", "refuse images that declare more pixels (default 89,478,485, PIL's limit): the guard against decompression bombs"),
    };

    enum Format { Npy, Csv, Jsonl }

    static int Run(Args a)
    {
        a.ApplyImageLimit();
        PrecisionOption.Read(a); // a wrong word is refused before any file is read
        var weights = a.String("weights") ?? throw new UsageException("features needs --weights (a Keras .h5 file, with or without the classifier, or a checkpoint)");
        var output = a.String("output") ?? throw new UsageException("features needs --output F (.npy, .csv or .jsonl)");
        int batch = a.Int("batch", 16, 1, 4096);
        var pooling = a.String("pooling", "avg").ToLowerInvariant() switch
        {
            "avg" => GlobalPooling.Avg,
            "max" => GlobalPooling.Max,
            var p => throw new UsageException($"--pooling must be avg or max, got '{p}'"),
        };
        var format = a.String("format")?.ToLowerInvariant() switch
        {
            null => Path.GetExtension(output).ToLowerInvariant() switch { ".csv" => Format.Csv, ".jsonl" => Format.Jsonl, _ => Format.Npy },
            "npy" => Format.Npy,
            "csv" => Format.Csv,
            "jsonl" => Format.Jsonl,
            var f => throw new UsageException($"--format must be npy, csv or jsonl, got '{f}'"),
        };
        if (a.String("input") is { } input) return Arrays(a, weights, input, output, pooling, format, batch);
        if (a.Positional.Count == 0) throw new UsageException("features needs image files, or --input X.npy");
        var resize = a.String("resize", "bilinear").ToLowerInvariant() switch
        {
            "bilinear" => ResizeMode.Bilinear,
            "nearest" => ResizeMode.Nearest,
            var r => throw new UsageException($"--resize must be bilinear or nearest, got '{r}'"),
        };
        Inputs.RequireImageFiles(a.Positional);
        // Before the model loads: a run over thousands of images should not find out at the end.
        OutputPaths.WritableFile("--output", output);

        var precision = PrecisionOption.Read(a);
        using var model = XceptionModel.LoadFeatures(weights, a.String("device", "auto"),
            a.String("image-size") is null ? null : a.Int("image-size", 299, 5, 8192), pooling);
        model.Precision = precision;
        Console.Error.WriteLine($"{model.FeatureSize} features ({pooling.ToString().ToLowerInvariant()} pooling), {model.ImageSize}x{model.ImageSize}, on {model.Device}");
        var sw = Stopwatch.StartNew();
        var names = new List<string>();
        var rows = new List<float[]>();
        int failed = 0, c = model.FeatureSize;
        // A batch at a time; when one of its files is broken, its images one by one, so the file costs only its own line.
        for (int start = 0; start < a.Positional.Count; start += batch)
        {
            var chunk = a.Positional.Skip(start).Take(batch).ToList();
            try
            {
                var y = model.Features(chunk, resize, batch);
                for (int i = 0; i < chunk.Count; i++) { names.Add(chunk[i]); rows.Add(y.AsSpan(i * c, c).ToArray()); }
            }
            catch (ImageException)
            {
                foreach (var f in chunk)
                {
                    try { rows.Add(model.Features(f, resize)); names.Add(f); }
                    catch (ImageException e) { Console.Error.WriteLine($"xception: {e.Message}"); failed++; }
                }
            }
        }
        if (rows.Count > 0) Write(output, format, names, rows, c, "image");
        Console.Error.WriteLine($"{rows.Count} images in {sw.Elapsed.TotalSeconds:F2} s" + (failed > 0 ? $", {failed} failed" : "") +
                                (rows.Count > 0 ? $"; wrote ({rows.Count}, {c}) to {output}" : "; nothing written"));
        return failed > 0 ? 1 : 0;
    }

    static int Arrays(Args a, string weights, string input, string output, GlobalPooling pooling, Format format, int batch)
    {
        if (a.Positional.Count > 0) throw new UsageException($"give either image files or --input, not both ('{a.Positional[0]}')");
        if (a.String("resize") is not null) throw new UsageException("--resize goes with image files; --input is already resized");
        OutputPaths.WritableFile("--output", output);
        var x = Inputs.ReadArray(input, a.String("image-size") is null ? null : a.Int("image-size", 0, 5, 8192));
        int size = x.Shape[1];
        var precision = PrecisionOption.Read(a);
        using var model = XceptionModel.LoadFeatures(weights, a.String("device", "auto"), size, pooling);
        model.Precision = precision;
        if (x.Shape[3] != model.Config.InputChannels)
            throw new XceptionException($"'{input}' has {x.Shape[3]} channels; the model takes {model.Config.InputChannels}");
        int n = x.Shape[0], c = model.FeatureSize;
        var y = model.Features(x.Data, n, batch);
        Write(output, format, Enumerable.Range(0, n).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList(),
            Enumerable.Range(0, n).Select(i => y.AsSpan(i * c, c).ToArray()).ToList(), c, "index");
        Console.Error.WriteLine($"wrote features ({n}, {c}) to {output} ({model.Device})");
        return 0;
    }

    /// <summary>
    /// Writes the rows in the chosen format; <paramref name="key"/> names the first column ("image": paths,
    /// "index": positions in the input array). Text values are shortest round-trip floats, so reading
    /// them back gives the same float32 values as the .npy.
    /// </summary>
    static void Write(string path, Format format, IReadOnlyList<string> names, IReadOnlyList<float[]> rows, int c, string key)
    {
        if (format == Format.Npy)
        {
            var all = new float[(long)rows.Count * c];
            for (int i = 0; i < rows.Count; i++) rows[i].CopyTo(all, (long)i * c);
            Npy.Write(path, all, [rows.Count, c]);
            return;
        }
        AtomicFile.Write(path, stream =>
        {
            using var w = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true) { NewLine = "\n" };
            if (format == Format.Csv)
                w.WriteLine($"{key}," + string.Join(",", Enumerable.Range(0, c).Select(j => $"f{j}")));
            for (int i = 0; i < rows.Count; i++)
            {
                var values = string.Join(",", rows[i].Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
                if (format == Format.Csv) w.WriteLine($"{Csv(names[i])},{values}");
                else if (key == "index") w.WriteLine($"{{\"index\": {names[i]}, \"features\": [{values}]}}");
                else w.WriteLine($"{{\"image\": {JsonSerializer.Serialize(names[i])}, \"features\": [{values}]}}");
            }
        });
    }

    /// <summary>A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.</summary>
    static string Csv(string s) => s.IndexOfAny([',', '"', '\n', '\r']) < 0 ? s : $"\"{s.Replace("\"", "\"\"")}\"";
}
