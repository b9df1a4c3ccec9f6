using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Xception.Gpu.IO;

/// <summary>
/// Checks the sizes in an HDF5 file's global heap collections before PureHDF opens the file (a public type
/// only so that its cost can be measured by the tests; <see cref="KerasH5"/> runs it on every file it opens).
/// <para>
/// Why: variable-length strings (layer_names, weight_names, this project's stored configuration) live in
/// the global heap. PureHDF 2.2 decodes a collection ("GCOL", version, 3 reserved bytes, collection size)
/// object by object, allocating each object's data buffer from the object size the file declares
/// <em>before</em> it reads the bytes, and checks the collection's version and minimum size only after
/// every object was decoded. One damaged object size therefore makes it allocate up to ~2 GB (anything
/// below .NET's largest array; 0x7000_0000 allocated 1.88 GB in a test) before it fails with "The file is
/// too small". This scan finds each collection header and checks that the collection lies within the file
/// and that every object fits in what is left of its collection, so such a file is refused with one line.
/// </para>
/// <para>
/// Which collections: every "GCOL" followed by version 1 and three zero bytes (eight bytes of weight data match
/// that by chance with a probability of about 2^-64 per position); and every other "GCOL", whatever its version
/// and reserved bytes (PureHDF decodes the objects before it validates the version), whose address the file
/// holds somewhere as a little-endian offset, which is how a variable-length element points at its collection:
/// four bytes of weights that spell "GCOL" are not checked unless their own position also appears in the file.
/// The sizes of offsets and lengths are read from a superblock at offset 0 (where Keras, h5py and PureHDF put
/// it); otherwise 8 is assumed.
/// </para>
/// <para>
/// Cost: one sequential read of the file in 1 MiB chunks and a vectorised search for the signature, plus a
/// few 16-byte reads per collection found; memory is the one chunk. On the full Xception model's .h5
/// (91.7 MB, written by <see cref="KerasH5.Save"/>) it took 16 ms on two shared cores with the file in the
/// page cache, allocating the 1 MiB chunk and nothing else.
/// </para>
/// </summary>
public static class Hdf5HeapCheck
{
    const int ChunkBytes = 1 << 20;

    /// <summary>HDF5's minimum collection size (it includes the collection's header); PureHDF enforces it too, but late.</summary>
    const ulong MinimumCollection = 4096;

    static ReadOnlySpan<byte> Signature => "GCOL"u8;

    /// <summary>Throws a one-line <see cref="WeightsException"/> naming <paramref name="path"/> when a global heap size is impossible.</summary>
    public static void Check(string path)
    {
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        long length = RandomAccess.GetLength(file);
        var (offsetSize, lengthSize) = SuperblockSizes(file, length);
        var chunk = new byte[(int)Math.Min(ChunkBytes, Math.Max(length, 1))];
        var others = new SortedSet<long>(); // signatures with another version or reserved bytes
        for (long start = 0; start < length;)
        {
            int n = ReadAt(file, chunk, start);
            var span = chunk.AsSpan(0, n);
            for (int i = span.IndexOf(Signature); i >= 0;)
            {
                // A header cut by the chunk's end is found again at the start of the next chunk (they overlap by 7 bytes).
                if (i + 8 <= n)
                {
                    if (span[i + 4] == 1 && span[i + 5] == 0 && span[i + 6] == 0 && span[i + 7] == 0)
                        Collection(path, file, length, lengthSize, start + i);
                    else others.Add(start + i);
                }
                int next = span[(i + 1)..].IndexOf(Signature);
                i = next < 0 ? -1 : i + 1 + next;
            }
            if (start + n >= length || n <= 7) break;
            start += n - 7;
        }
        // Each search below reads the file once; past a few dozen candidates (no valid file has them) every one is
        // checked as a collection instead.
        foreach (long at in others)
            if (others.Count > MaxSearches || Referenced(file, length, chunk, at, offsetSize))
                Collection(path, file, length, lengthSize, at);
    }

    const int MaxSearches = 32;

    /// <summary>Whether the file holds <paramref name="address"/> as a little-endian offset of <paramref name="offsetSize"/> bytes.</summary>
    static bool Referenced(SafeFileHandle file, long length, byte[] chunk, long address, int offsetSize)
    {
        Span<byte> pattern = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(pattern, address);
        pattern = pattern[..offsetSize];
        for (long start = 0; start < length;)
        {
            int n = ReadAt(file, chunk, start);
            if (chunk.AsSpan(0, n).IndexOf(pattern) >= 0) return true;
            if (start + n >= length || n < offsetSize) return false;
            start += n - (offsetSize - 1);
        }
        return false;
    }

    /// <summary>
    /// Walks the objects of the collection at <paramref name="at"/> the way PureHDF does: from after the
    /// collection header, until the free-space object (index 0) or until PureHDF would stop (it counts the
    /// collection's header as room for objects, so it may look at one more object than the spec allows;
    /// that one must then be empty). Every object's size must fit between its data and the collection's end.
    /// </summary>
    static void Collection(string path, SafeFileHandle file, long length, int lengthSize, long at)
    {
        Span<byte> header = stackalloc byte[8 + 8];
        int headerSize = 8 + lengthSize; // the collection's and each object's header have the same size
        if (at + headerSize > length) return; // PureHDF hits the end of the file before allocating anything
        ReadAt(file, header[..headerSize], at);
        ulong size = ReadLength(header[8..], lengthSize);
        ulong room = (ulong)(length - at);
        if (size < MinimumCollection || size > room)
            throw new WeightsException($"'{path}' is damaged: its HDF5 global heap collection at byte {at} declares a size of {size} bytes (expected at least {MinimumCollection} and at most the {room} bytes from there to the end of the file)");

        long end = at + (long)size, position = at + headerSize;
        // PureHDF's count of what is left: starts at the whole collection size, header included.
        for (ulong remaining = size; remaining > (ulong)headerSize;)
        {
            if (position + headerSize > length) return; // the end of the file stops PureHDF too
            ReadAt(file, header[..headerSize], position);
            if (BinaryPrimitives.ReadUInt16LittleEndian(header) == 0) return; // free space: PureHDF stops here
            ulong objectSize = ReadLength(header[8..], lengthSize);
            ulong left = (ulong)Math.Max(0, end - position - headerSize);
            if (objectSize > left)
                throw new WeightsException($"'{path}' is damaged: its HDF5 global heap collection at byte {at} declares an object of {objectSize} bytes in a collection of {size} bytes (expected at most the {left} bytes left in the collection)");
            // Objects are padded to 8 bytes. With objectSize <= left this stays below 'remaining', which is
            // 'left' plus two headers: PureHDF's unsigned count cannot wrap around.
            ulong consumed = (ulong)headerSize + (objectSize + 7) / 8 * 8;
            remaining -= consumed;
            position += (long)consumed;
        }
    }

    /// <summary>
    /// The superblock's "size of offsets" and "size of lengths": bytes 13 and 14 in superblock versions 0 and 1
    /// (after the signature, four version bytes and a reserved byte), bytes 9 and 10 in versions 2 and 3. 8 for a
    /// size when there is no superblock at offset 0 or its value is not one PureHDF reads (it would refuse such a
    /// file itself).
    /// </summary>
    static (int Offsets, int Lengths) SuperblockSizes(SafeFileHandle file, long length)
    {
        if (length < 16) return (8, 8);
        Span<byte> head = stackalloc byte[16];
        ReadAt(file, head, 0);
        if (!head[..8].SequenceEqual((ReadOnlySpan<byte>)[0x89, (byte)'H', (byte)'D', (byte)'F', 0x0d, 0x0a, 0x1a, 0x0a])) return (8, 8);
        int at = head[8] switch { 0 or 1 => 13, 2 or 3 => 9, _ => -1 };
        static int Valid(int size) => size is 2 or 4 or 8 ? size : 8;
        return at < 0 ? (8, 8) : (Valid(head[at]), Valid(head[at + 1]));
    }

    static ulong ReadLength(ReadOnlySpan<byte> b, int size) => size switch
    {
        2 => BinaryPrimitives.ReadUInt16LittleEndian(b),
        4 => BinaryPrimitives.ReadUInt32LittleEndian(b),
        _ => BinaryPrimitives.ReadUInt64LittleEndian(b),
    };

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/> (or up to the end of the file); returns the bytes read.</summary>
    static int ReadAt(SafeFileHandle file, Span<byte> buffer, long offset)
    {
        int n = 0;
        for (int got; n < buffer.Length && (got = RandomAccess.Read(file, buffer[n..], offset + n)) > 0;) n += got;
        return n;
    }
}
