using Xception.Gpu.Imaging;
using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace Xception.Gpu.Data;

/// <summary>
/// Produces the batches of one epoch, in order, decoding and preprocessing samples on background threads so
/// that training does not wait for the disk or the JPEG decoder.
///
/// How: the samples of the next <see cref="BatchLoaderOptions.Prefetch"/> batches are queued as separate jobs;
/// worker threads take jobs in queue order and write each sample into its own slot of its batch's buffer. When
/// the consumer takes a batch, the next batch's jobs are queued. Every sample's result depends only on the
/// source, the options and the sample's (seed, epoch, index), and its position in the batch is fixed before any
/// thread runs, so batches are bit-identical whatever the number of threads or their timing. Skipping a sample
/// (an undecodable image) happens when the consumer assembles the batch, in slot order, so the skip counter
/// and names are deterministic as well.
///
/// One consumer: call <see cref="Next"/> (or enumerate <see cref="ReadAll"/>) from one thread. Dispose stops
/// and joins the workers (a sample being decoded is finished first); queued work is dropped.
/// </summary>
public sealed class BatchLoader : IDisposable
{
    readonly IDataSource source;
    readonly int[] order;
    readonly BatchLoaderOptions options;
    readonly int perSample;
    readonly BlockingCollection<Job> jobs = new(new ConcurrentQueue<Job>());
    readonly Queue<Pending> pending = new();
    readonly Thread[] workers;
    readonly CancellationTokenSource stop = new();
    readonly List<string> skippedFiles = [];
    int nextToQueue;
    bool disposed;

    /// <summary>Batches in the whole epoch (ceil(order length / batch size)), whatever the start batch.</summary>
    public int BatchCount { get; }

    /// <summary>Samples left out so far because their image could not be decoded.</summary>
    public int Skipped { get; private set; }

    /// <summary>The files of the first skipped samples (up to <see cref="BatchLoaderOptions.MaxSkippedNames"/>).</summary>
    public IReadOnlyList<string> SkippedFiles => skippedFiles;

    /// <summary>
    /// Starts loading the batches of <paramref name="order"/> (source indices, e.g. <see cref="Split.EpochOrder(int)"/>
    /// or <see cref="Split.Validation"/>) from batch <see cref="BatchLoaderOptions.StartBatch"/> on.
    /// </summary>
    public BatchLoader(IDataSource source, IReadOnlyList<int> order, BatchLoaderOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(order);
        ArgumentNullException.ThrowIfNull(options);
        Check(options);
        this.source = source;
        this.options = options;
        this.order = order.ToArray();
        foreach (var i in this.order)
            if ((uint)i >= (uint)source.Count)
                throw new OpArgumentException("batch loader", $"sample index {i} is outside the data set's 0..{source.Count - 1}");
        perSample = options.ImageSize * options.ImageSize * options.Channels;
        BatchCount = (this.order.Length + options.BatchSize - 1) / options.BatchSize;
        if (options.StartBatch > BatchCount)
            throw new OpArgumentException("batch loader", $"start batch {options.StartBatch} is past the epoch's {BatchCount} batches");

        nextToQueue = options.StartBatch;
        int samplesLeft = this.order.Length - Math.Min(this.order.Length, options.StartBatch * options.BatchSize);
        int count = Math.Clamp(options.Workers > 0 ? options.Workers : Environment.ProcessorCount, 1, Math.Max(1, samplesLeft));
        workers = new Thread[count];
        for (int w = 0; w < count; w++)
        {
            workers[w] = new Thread(Work) { IsBackground = true, Name = $"xception-data-{w}" };
            workers[w].Start();
        }
        while (pending.Count < options.Prefetch && nextToQueue < BatchCount) Queue(nextToQueue++);
    }

    static void Check(BatchLoaderOptions o)
    {
        if (o.BatchSize <= 0) throw new OpArgumentException("batch loader", $"batch size {o.BatchSize} is not positive");
        if (o.ImageSize <= 0) throw new OpArgumentException("batch loader", $"image size {o.ImageSize} is not positive");
        if (o.Channels is not (1 or 3)) throw new OpArgumentException("batch loader", $"{o.Channels} channels; expected 1 or 3");
        if (o.StartBatch < 0) throw new OpArgumentException("batch loader", $"start batch {o.StartBatch} is negative");
        if (o.Workers < 0) throw new OpArgumentException("batch loader", $"{o.Workers} workers; expected 0 (one per core) or more");
        if (o.Shard is { } s && (s.Parts < 1 || s.First < 0 || s.Take < 1 || s.First + s.Take > s.Parts))
            throw new OpArgumentException("batch loader", $"shard of replicas {s.First}..{s.First + s.Take - 1} of {s.Parts} is not a part of the batch");
        if (o.Prefetch <= 0) throw new OpArgumentException("batch loader", $"prefetch of {o.Prefetch} batches; expected at least 1");
        if ((long)o.BatchSize * o.ImageSize * o.ImageSize * o.Channels > Array.MaxLength)
            throw new OpArgumentException("batch loader", $"a batch of {o.BatchSize} {o.ImageSize}x{o.ImageSize}x{o.Channels} images does not fit one array");
    }

    /// <summary>
    /// The next batch, or null after the last. Waits for it when the workers are behind. Throws the error of a
    /// sample that failed for a reason other than an undecodable image, or the <see cref="ImageException"/> of
    /// one when <see cref="BatchLoaderOptions.Strict"/> is set; the batch is then lost and the next call goes on
    /// with the following one.
    /// </summary>
    public Batch? Next(CancellationToken cancel = default)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (pending.Count == 0) return null;
        var p = pending.Peek();
        p.Done.Wait(cancel);
        pending.Dequeue();
        p.Done.Dispose();
        if (nextToQueue < BatchCount) Queue(nextToQueue++);
        return Assemble(p);
    }

    /// <summary>The remaining batches of the epoch, as <see cref="Next"/> returns them.</summary>
    public IEnumerable<Batch> ReadAll(CancellationToken cancel = default)
    {
        while (Next(cancel) is { } batch) yield return batch;
    }

    void Queue(int index)
    {
        int start = index * options.BatchSize, n = Math.Min(options.BatchSize, order.Length - start);
        if (options.Shard is { } shard)
        {
            var (offset, length) = shard.Of(n);
            start += offset;
            n = length;
        }
        var p = new Pending(index, start, n, new float[n * perSample]);
        pending.Enqueue(p);
        for (int slot = 0; slot < n; slot++) jobs.Add(new Job(p, slot));
    }

    void Work()
    {
        try
        {
            foreach (var job in jobs.GetConsumingEnumerable(stop.Token)) Run(job);
        }
        catch (OperationCanceledException) { }
    }

    void Run(Job job)
    {
        var p = job.Batch;
        int i = order[p.Start + job.Slot];
        try
        {
            var image = source.Load(i);
            image.Validate($"sample {i}");
            if (source.MultiLabel)
            {
                foreach (var k in image.Labels)
                    if ((uint)k >= (uint)source.Classes)
                        throw new DataException($"sample {i}", $"sample {i} has label {k}; expected 0 to {source.Classes - 1} ({source.Description})");
                p.LabelSets[job.Slot] = image.Labels;
            }
            else if ((uint)image.Label >= (uint)source.Classes)
                throw new DataException($"sample {i}", $"sample {i} has label {image.Label}; expected 0 to {source.Classes - 1} ({source.Description})");
            p.Labels[job.Slot] = image.Label;
            SampleTransform.Prepare(image, options.ImageSize, options.Channels, options.Augment, options.Seed, options.Epoch, i,
                p.X.AsSpan(job.Slot * perSample, perSample));
        }
        catch (Exception e)
        {
            p.Errors[job.Slot] = e;
        }
        finally
        {
            p.Done.Signal();
        }
    }

    Batch Assemble(Pending p)
    {
        var keep = new List<int>(p.Count);
        for (int slot = 0; slot < p.Count; slot++)
        {
            var e = p.Errors[slot];
            if (e is null) { keep.Add(slot); continue; }
            if (e is ImageException bad && !options.Strict)
            {
                Skipped++;
                if (skippedFiles.Count < options.MaxSkippedNames) skippedFiles.Add(bad.Path);
                continue;
            }
            ExceptionDispatchInfo.Capture(e).Throw();
        }

        int n = keep.Count;
        var x = p.X;
        if (n < p.Count)
        {
            x = new float[n * perSample];
            for (int j = 0; j < n; j++) Array.Copy(p.X, keep[j] * perSample, x, j * perSample, perSample);
        }
        var indices = keep.Select(s => order[p.Start + s]).ToArray();
        if (!source.MultiLabel)
            return new Batch(p.Index, n, x, keep.Select(s => p.Labels[s]).ToArray(), null, indices);
        var targets = new float[n * source.Classes];
        for (int j = 0; j < n; j++)
            foreach (var k in p.LabelSets[keep[j]]!) targets[j * source.Classes + k] = 1f;
        return new Batch(p.Index, n, x, [], targets, indices);
    }

    /// <summary>Stops the workers and waits for them (each finishes the sample it is decoding); queued work is dropped.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        stop.Cancel();
        jobs.CompleteAdding();
        foreach (var w in workers) w.Join();
        foreach (var p in pending) p.Done.Dispose();
        pending.Clear();
        jobs.Dispose();
        stop.Dispose();
    }

    /// <summary>A batch being built: its buffer, and per slot a label, a label set or an error.</summary>
    sealed class Pending(int index, int start, int count, float[] x)
    {
        public int Index { get; } = index;
        public int Start { get; } = start;
        public int Count { get; } = count;
        public float[] X { get; } = x;
        public int[] Labels { get; } = new int[count];
        public int[]?[] LabelSets { get; } = new int[count][];
        public Exception?[] Errors { get; } = new Exception?[count];
        public CountdownEvent Done { get; } = new(count);
    }

    readonly record struct Job(Pending Batch, int Slot);
}
