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

    /// <summary>
    /// The longest line accepted, in characters: a path (at most 4096 on Linux) and thousands of labels fit, and
    /// a binary or runaway file given as a list is refused before one line can grow without bound.
    /// </summary>
    public const int MaxLineChars = 1 << 16;

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
        List<string> lines;
        try { lines = ReadLines(listFile); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw new DataException(listFile, $"list file '{listFile}' not found", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Opening a folder fails with "access denied" on Unix: say what it is instead.
            if (Directory.Exists(listFile)) throw new DataException(listFile, $"list file '{listFile}' is a folder; expected a text file of lines 'path label1 label2 ...'", e);
            throw new DataException(listFile, $"list file '{listFile}' could not be read: {e.Message}", e);
        }

        var baseDir = Path.GetDirectoryName(Path.GetFullPath(listFile))!;
        char[] separators = listFile.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) ? [' ', '\t', ','] : [' ', '\t'];
        var paths = new List<string>();
        var tokens = new List<(string[] Labels, int Line)>();
        bool allIntegers = true;
        for (int n = 0; n < lines.Count; n++)
        {
            var line = lines[n].Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var fields = line.Split(separators, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0) continue;   // only separators, such as ",,," in a .csv file
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
            if (classNames.Length > MaxClassIndex + 1)
                throw new DataException(listFile, $"list file '{listFile}' names {classNames.Length} different labels; expected at most {MaxClassIndex + 1} classes");
            var index = classNames.Select((name, k) => (name, k)).ToDictionary(p => p.name, p => p.k, StringComparer.Ordinal);
            for (int i = 0; i < tokens.Count; i++)
                labelSets[i] = tokens[i].Labels.Select(t => index[t]).Distinct().Order().ToArray();
        }
        files = paths.ToArray();
        CheckFiles(listFile, tokens.Select(t => t.Line).ToArray());
    }

    /// <summary>
    /// Every entry must name an existing file: a folder is never an image, and a missing file is most often a
    /// path relative to the wrong folder, which would otherwise surface one skipped image at a time during
    /// training. One stat per entry; the first bad entry is reported with its line and the count of the others.
    /// </summary>
    void CheckFiles(string listFile, int[] lineOf)
    {
        int bad = -1, badCount = 0;
        string why = "";
        for (int i = 0; i < files.Length; i++)
        {
            string? problem;
            try
            {
                var attributes = File.GetAttributes(files[i]);
                problem = (attributes & FileAttributes.Directory) != 0 ? "is a folder" : null;
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { problem = "not found"; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { problem = $"cannot be checked ({OneLine(e.Message)})"; }
            catch (ArgumentException) { problem = "is not a valid path"; }
            if (problem is null) continue;
            if (badCount++ == 0) (bad, why) = (i, problem);
        }
        if (badCount == 0) return;
        var others = badCount > 1 ? $" (and {badCount - 1} more entries like it)" : "";
        throw new DataException(listFile, $"list file '{listFile}' line {lineOf[bad]}: image '{Shown(files[bad])}' {why}{others}; " +
            $"expected an image file (relative paths are relative to '{Path.GetDirectoryName(Path.GetFullPath(listFile))}')");
    }

    /// <summary>
    /// The file's lines, read in chunks so that a line longer than <see cref="MaxLineChars"/> is refused before it
    /// is held whole. Line ends are \n, \r\n or \r, as <see cref="StreamReader.ReadLine"/> has them; a UTF-8
    /// or UTF-16 byte order mark is honoured.
    /// </summary>
    static List<string> ReadLines(string listFile)
    {
        var lines = new List<string>();
        using var reader = new StreamReader(listFile, detectEncodingFromByteOrderMarks: true);
        var chunk = new char[8192];
        var line = new System.Text.StringBuilder();
        bool afterCr = false;
        int n;
        while ((n = reader.Read(chunk, 0, chunk.Length)) > 0)
        {
            for (int i = 0; i < n; i++)
            {
                char c = chunk[i];
                if (c == '\n' && afterCr) { afterCr = false; continue; }
                afterCr = c == '\r';
                if (c is '\n' or '\r') { lines.Add(line.ToString()); line.Clear(); continue; }
                if (line.Length == MaxLineChars)
                    throw new DataException(listFile, $"list file '{listFile}' line {lines.Count + 1} is longer than {MaxLineChars} characters; expected lines 'path label1 label2 ...'");
                line.Append(c);
            }
        }
        if (line.Length > 0) lines.Add(line.ToString());
        return lines;
    }

    /// <summary>A path from the list, cut and with control characters escaped, so the message stays one line.</summary>
    static string Shown(string s)
    {
        var cut = s.Length > 300 ? s[..300] + "..." : s;
        return string.Concat(cut.Select(c => char.IsControl(c) ? $"\\u{(int)c:X4}" : c.ToString()));
    }

    static string OneLine(string s) => string.Join(' ', s.Split('\r', '\n', StringSplitOptions.RemoveEmptyEntries)).TrimEnd('.');

    /// <summary>The class indices of sample <paramref name="index"/>, ascending, without decoding it.</summary>
    public IReadOnlyList<int> LabelsOf(int index) => labelSets[index];

    /// <inheritdoc/>
    public RawImage Load(int index)
    {
        var img = ImageLoader.Load(files[index]);
        return new RawImage(img.Width, img.Height, 3, img.Pixels, -1, labelSets[index].ToArray());
    }
}
