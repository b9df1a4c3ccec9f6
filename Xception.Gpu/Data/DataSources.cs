using System.Globalization;

namespace Xception.Gpu.Data;

/// <summary>
/// Opens a data set from the one string a user gives on a command line (see <see cref="Open"/>), so every tool
/// accepts the same names and paths and reports a bad one the same way.
/// </summary>
public static class DataSources
{
    /// <summary>Where the Debian package dataset-fashion-mnist installs the four IDX files (gzipped).</summary>
    public const string FashionMnistFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>Where an MNIST package would put them, following the same convention (Debian has none today).</summary>
    public const string MnistFolder = "/usr/share/datasets/mnist";

    /// <summary>Images in the training split of "synthetic" without a count.</summary>
    public const int SyntheticDefaultCount = 10000;

    /// <summary>What <see cref="Open"/> accepts, for error messages.</summary>
    public const string Accepted =
        "expected synthetic, synthetic:N, fashion-mnist, mnist, a folder of IDX files (train-images-idx3-ubyte[.gz], ...), " +
        "a folder of CIFAR-10 batches (data_batch_*.bin), a folder with one subfolder per class, or a list file (.txt, .csv, .lst)";

    static readonly string[] ListExtensions = [".txt", ".csv", ".lst"];

    /// <summary>
    /// Opens <paramref name="spec"/>:
    /// <list type="bullet">
    /// <item><c>synthetic</c> or <c>synthetic:N</c>: <see cref="SyntheticSource"/> with N (default 10000) training
    /// images and a test split of N / 5 (at least 1) drawn with an independent seed derived from <paramref name="seed"/>.</item>
    /// <item><c>fashion-mnist</c>: the IDX files in <see cref="FashionMnistFolder"/>; <c>mnist</c>: those in <see cref="MnistFolder"/>.</item>
    /// <item>a folder with train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] (a dot instead of the
    /// last dash, as some copies of MNIST name them, also works); the t10k files, when present, are the test split.</item>
    /// <item>a folder with CIFAR-10's data_batch_*.bin; test_batch.bin, when present, is the test split.</item>
    /// <item>any other folder: one subfolder per class (<see cref="ImageFolderSource"/>); no test split.</item>
    /// <item>a .txt, .csv or .lst file: a multi-label list (<see cref="ListFileSource"/>); no test split.</item>
    /// </list>
    /// Anything else is a <see cref="DataException"/> naming the spec and listing what is accepted.
    /// </summary>
    public static DataSet Open(string spec, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var s = spec.Trim();
        if (s.Equals("synthetic", StringComparison.OrdinalIgnoreCase)) return Synthetic(SyntheticDefaultCount, seed);
        if (s.StartsWith("synthetic:", StringComparison.OrdinalIgnoreCase))
        {
            var n = s["synthetic:".Length..];
            if (!int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count <= 0)
                throw new DataException(spec, $"data set '{spec}': '{n}' is not a positive image count; expected synthetic:N, e.g. synthetic:2000");
            return Synthetic(count, seed);
        }
        if (s.Equals("fashion-mnist", StringComparison.OrdinalIgnoreCase))
            return Packaged(spec, FashionMnistFolder, "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)");
        if (s.Equals("mnist", StringComparison.OrdinalIgnoreCase))
            return Packaged(spec, MnistFolder, "no Debian package provides MNIST; pass the folder holding train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]");

        if (File.Exists(s))
        {
            if (ListExtensions.Any(e => s.EndsWith(e, StringComparison.OrdinalIgnoreCase))) return new DataSet(new ListFileSource(s), null);
            throw new DataException(spec, $"data set '{spec}' is a file but not a list file; {Accepted}");
        }
        if (Directory.Exists(s)) return OpenFolder(s);
        throw new DataException(spec, $"unknown data set '{spec}': no such file or folder; {Accepted}");
    }

    static DataSet Synthetic(int count, int seed) =>
        new(new SyntheticSource(count, seed: seed),
            new SyntheticSource(Math.Max(1, count / 5), seed: unchecked((int)Rng.Hash(Rng.SyntheticSalt, seed, -1))));

    static DataSet Packaged(string spec, string folder, string hint)
    {
        if (!Directory.Exists(folder)) throw new DataException(spec, $"data set '{spec}': folder '{folder}' not found; {hint}");
        return FindIdx(folder) ?? throw new DataException(spec, $"data set '{spec}': folder '{folder}' holds no train-images-idx3-ubyte[.gz]; {hint}");
    }

    static DataSet OpenFolder(string dir)
    {
        if (FindIdx(dir) is { } idx) return idx;
        var batches = Directory.GetFiles(dir, "data_batch_*.bin").Order(StringComparer.Ordinal).ToArray();
        if (batches.Length > 0)
        {
            var test = Path.Combine(dir, "test_batch.bin");
            return new DataSet(new Cifar10Source(batches), File.Exists(test) ? new Cifar10Source([test]) : null);
        }
        if (Directory.GetDirectories(dir).Length == 0 && Directory.GetFiles(dir).Length > 0)
            throw new DataException(dir, $"data set folder '{dir}' has files but no IDX, CIFAR-10 or class subfolders; {Accepted}");
        return new DataSet(new ImageFolderSource(dir), null);
    }

    /// <summary>The IDX pair for <paramref name="split"/> ("train" or "t10k") in <paramref name="dir"/>, or null
    /// when there are no images; images without labels are an error.</summary>
    static (string Images, string Labels)? IdxPair(string dir, string split)
    {
        var images = Find(dir, $"{split}-images", "idx3-ubyte");
        if (images is null) return null;
        var labels = Find(dir, $"{split}-labels", "idx1-ubyte")
            ?? throw new DataException(dir, $"folder '{dir}' has '{Path.GetFileName(images)}' but no {split}-labels-idx1-ubyte[.gz]; expected both");
        return (images, labels);
    }

    static string? Find(string dir, string stem, string kind)
    {
        foreach (var sep in new[] { "-", "." })
            foreach (var ext in new[] { "", ".gz" })
            {
                var p = Path.Combine(dir, $"{stem}{sep}{kind}{ext}");
                if (File.Exists(p)) return p;
            }
        return null;
    }

    static DataSet? FindIdx(string dir)
    {
        if (IdxPair(dir, "train") is not { } train) return null;
        var test = IdxPair(dir, "t10k");
        return new DataSet(new IdxSource(train.Images, train.Labels), test is { } t ? new IdxSource(t.Images, t.Labels) : null);
    }
}
