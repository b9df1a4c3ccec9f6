namespace Xception.Gpu.Data;

/// <summary>
/// CIFAR-10's binary version (cifar-10-batches-bin): each file is a run of 3073-byte records, one label byte
/// (0-9) then a 32x32 image as three 1024-byte planes, red, green, blue, rows top to bottom. The files are read
/// into memory once (the five training batches are 150 MB) and records are converted to interleaved RGB when
/// loaded. Samples are numbered through the files in the order given.
/// </summary>
public sealed class Cifar10Source : IDataSource
{
    /// <summary>Image side, pixels per plane, and bytes per record (label + 3 planes).</summary>
    public const int Side = 32, Plane = Side * Side, RecordSize = 1 + 3 * Plane;

    /// <summary>CIFAR-10's classes, in label order (batches.meta.txt).</summary>
    public static readonly IReadOnlyList<string> ClassNameList =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    readonly byte[][] data;
    readonly int[] starts;   // first sample index of each file, plus Count at the end

    /// <inheritdoc/>
    public int Count { get; }
    /// <inheritdoc/>
    public int Classes => ClassNameList.Count;
    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => ClassNameList;
    /// <inheritdoc/>
    public bool MultiLabel => false;
    /// <inheritdoc/>
    public string Description { get; }

    /// <summary>Reads <paramref name="batchFiles"/> in order; a file whose size is not a whole number of records,
    /// or a label above 9, is a <see cref="DataException"/> naming the file.</summary>
    public Cifar10Source(IEnumerable<string> batchFiles)
    {
        ArgumentNullException.ThrowIfNull(batchFiles);
        var paths = batchFiles.ToArray();
        if (paths.Length == 0) throw new DataException("", "CIFAR-10: no batch files given; expected data_batch_1.bin ... or test_batch.bin");
        data = new byte[paths.Length][];
        starts = new int[paths.Length + 1];
        for (int f = 0; f < paths.Length; f++)
        {
            var p = paths[f];
            data[f] = ReadBatch(p);
            int n = data[f].Length / RecordSize;
            for (int r = 0; r < n; r++)
                if (data[f][r * RecordSize] >= Classes)
                    throw new DataException(p, $"CIFAR-10 batch file '{p}' record {r} has label {data[f][r * RecordSize]}; expected 0 to 9");
            // Each file holds under 2^31 / 3073 records, so only the sum over many files could overflow an int.
            if ((long)starts[f] + n > int.MaxValue)
                throw new DataException(p, $"CIFAR-10 batch file '{p}' brings the total past {int.MaxValue} records; expected fewer batch files");
            starts[f + 1] = starts[f] + n;
        }
        Count = starts[^1];
        Description = $"CIFAR-10 {string.Join(", ", paths.Select(Path.GetFileName))}: {Count} RGB 32x32 images, 10 classes";
    }

    /// <summary>
    /// The largest batch file read: whole records in one byte array (<see cref="Array.MaxLength"/>). CIFAR-10's
    /// own batches are 30,730,000 bytes (10,000 records), so only a wrong file comes near it.
    /// </summary>
    public const long MaxFileBytes = 0x7FFFFFC7 / RecordSize * RecordSize;

    /// <summary>One batch file, its size checked (whole records, not empty, under the limit) before it is read.</summary>
    static byte[] ReadBatch(string p)
    {
        var fs = IO.InputFile.OpenRead(p, "CIFAR-10 batch file", "a .bin batch file such as data_batch_1.bin", (m, e) => new DataException(p, m, e), bufferSize: 1);
        using (fs)
        {
            long length;
            try { length = fs.Length; }
            catch (IOException e) { throw new DataException(p, $"CIFAR-10 batch file '{p}' could not be read: {e.Message}", e); }
            if (length == 0 || length % RecordSize != 0)
                throw new DataException(p, $"CIFAR-10 batch file '{p}' has {length} bytes, not a whole number of {RecordSize}-byte records (1 label byte + 32x32x3 pixels)");
            if (length > MaxFileBytes)
                throw new DataException(p, $"CIFAR-10 batch file '{p}' has {length} bytes, more than the {MaxFileBytes} one batch file may hold; expected batches of 10000 records (30730000 bytes)");
            var bytes = new byte[length];
            try { fs.ReadExactly(bytes); }
            catch (EndOfStreamException e)
            { throw new DataException(p, $"CIFAR-10 batch file '{p}' became shorter while it was read; expected {length} bytes", e); }
            catch (IOException e)
            { throw new DataException(p, $"CIFAR-10 batch file '{p}' could not be read: {e.Message}", e); }
            return bytes;
        }
    }

    /// <inheritdoc/>
    public RawImage Load(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"sample {index} is outside 0..{Count - 1}");
        int f = Array.BinarySearch(starts, index);   // starts rise strictly: no file is empty
        f = f >= 0 ? f : ~f - 1;
        var rec = data[f].AsSpan((index - starts[f]) * RecordSize, RecordSize);
        var pixels = new byte[3 * Plane];
        for (int i = 0; i < Plane; i++)
        {
            pixels[3 * i] = rec[1 + i];
            pixels[3 * i + 1] = rec[1 + Plane + i];
            pixels[3 * i + 2] = rec[1 + 2 * Plane + i];
        }
        return new RawImage(Side, Side, 3, pixels, rec[0]);
    }
}
