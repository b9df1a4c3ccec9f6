using System.Globalization;
using Xception.Gpu.Imaging;

namespace Xception.Gpu.Data;

/// <summary>
/// A multi-label data set described by a text file, one image per line: <c>path label1 label2 ...</c>, fields
/// separated by spaces or tabs (in a .csv file, commas too). Empty lines and lines starting with # are skipped;
/// a line with a path and no labels is an image with no label (all targets 0). Relative paths are relative to
/// the list file's folder, so a data set folder can be moved as a whole. Paths cannot contain separators.
///
/// Labels are class indices when every label in the file is a non-negative integer (Classes = largest + 1);
/// otherwise every label is a class name, and names are numbered in ordinal order, so the numbering does not
/// depend on the order of the lines. Images are decoded with <see cref="ImageLoader"/> into RGB when loaded.
/// </summary>
public sealed class ListFileSource : IDataSource
{
    /// <summary>The largest class index accepted, which keeps a typo from allocating millions of outputs.</summary>
    public const int MaxClassIndex = 65535;

    readonly string[] files;
    readonly int[][] labelSets;
    readonly string[] classNames;

    /// <summary>The list file as given.</summary>
    public string ListFile { get; }
    /// <summary>Each entry's image path (relative paths resolved against the list file's folder), in index order.</summary>
    public IReadOnlyList<string> Files => files;
    /// <inheritdoc/>
    public int Count => files.Length;
    /// <inheritdoc/>
    public int Classes => classNames.Length;
    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => classNames;
    /// <inheritdoc/>
    public bool MultiLabel => true;
    /// <inheritdoc/>
    public string Description => $"list file '{ListFile}': {Count} images, {Classes} labels (multi-label)";

    /// <summary>Parses <paramref name="listFile"/>; errors are <see cref="DataException"/>s naming the file and line.</summary>
    public ListFileSource(string listFile)
    {
        ArgumentNullException.ThrowIfNull(listFile);
        ListFile = listFile;
        string[] lines;
        try { lines = File.ReadAllLines(listFile); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw new DataException(listFile, $"list file '{listFile}' not found", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new DataException(listFile, $"list file '{listFile}' could not be read: {e.Message}", e); }

        var baseDir = Path.GetDirectoryName(Path.GetFullPath(listFile))!;
        char[] separators = listFile.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) ? [' ', '\t', ','] : [' ', '\t'];
        var paths = new List<string>();
        var tokens = new List<(string[] Labels, int Line)>();
        bool allIntegers = true;
        for (int n = 0; n < lines.Length; n++)
        {
            var line = lines[n].Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var fields = line.Split(separators, StringSplitOptions.RemoveEmptyEntries);
            foreach (var label in fields.Skip(1))
            {
                if (label.Length > 1 && label[0] == '-' && label.Skip(1).All(char.IsAsciiDigit))
                    throw new DataException(listFile, $"list file '{listFile}' line {n + 1}: label '{label}' is negative; expected a class index from 0 or a class name");
                if (!label.All(char.IsAsciiDigit)) allIntegers = false;
            }
            paths.Add(Path.IsPathRooted(fields[0]) ? fields[0] : Path.Combine(baseDir, fields[0]));
            tokens.Add((fields[1..], n + 1));
        }
        if (paths.Count == 0)
            throw new DataException(listFile, $"list file '{listFile}' has no entries; expected lines 'path label1 label2 ...'");

        labelSets = new int[tokens.Count][];
        if (allIntegers)
        {
            int max = -1;
            for (int i = 0; i < tokens.Count; i++)
            {
                var (labels, line) = tokens[i];
                labelSets[i] = labels.Select(t =>
                {
                    if (!int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out int k) || k > MaxClassIndex)
                        throw new DataException(listFile, $"list file '{listFile}' line {line}: label '{t}' is too large; expected a class index up to {MaxClassIndex}");
                    max = Math.Max(max, k);
                    return k;
                }).Distinct().Order().ToArray();
            }
            if (max < 0)
                throw new DataException(listFile, $"list file '{listFile}' has no labels on any line; expected lines 'path label1 label2 ...'");
            classNames = Enumerable.Range(0, max + 1).Select(k => k.ToString(CultureInfo.InvariantCulture)).ToArray();
        }
        else
        {
            classNames = tokens.SelectMany(t => t.Labels).Distinct().Order(StringComparer.Ordinal).ToArray();
            var index = classNames.Select((name, k) => (name, k)).ToDictionary(p => p.name, p => p.k, StringComparer.Ordinal);
            for (int i = 0; i < tokens.Count; i++)
                labelSets[i] = tokens[i].Labels.Select(t => index[t]).Distinct().Order().ToArray();
        }
        files = paths.ToArray();
    }

    /// <summary>The class indices of sample <paramref name="index"/>, ascending, without decoding it.</summary>
    public IReadOnlyList<int> LabelsOf(int index) => labelSets[index];

    /// <inheritdoc/>
    public RawImage Load(int index)
    {
        var img = ImageLoader.Load(files[index]);
        return new RawImage(img.Width, img.Height, 3, img.Pixels, -1, labelSets[index].ToArray());
    }
}
