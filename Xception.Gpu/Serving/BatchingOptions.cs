using System.Globalization;

namespace Xception.Gpu.Serving;

/// <summary>
/// How a <see cref="DynamicBatcher"/> stacks requests into device batches. The names and meanings are those of
/// NVIDIA Triton's dynamic batcher (model configuration <c>max_batch_size</c>, <c>dynamic_batching {
/// max_queue_delay_microseconds, default_queue_policy { max_queue_size, default_timeout_microseconds } }</c>), so
/// that a setting carries over.
/// </summary>
public sealed record BatchingOptions
{
    /// <summary>The most images one device run takes; a request of more images is refused. Default 8.</summary>
    public int MaxBatchSize { get; init; } = 8;

    /// <summary>
    /// How long the oldest queued request may wait for others to fill a batch, in microseconds. 0 (the default)
    /// takes whatever is queued as soon as the device is free: requests that arrive while a batch runs still
    /// form the next batch together.
    /// </summary>
    public int MaxQueueDelayMicroseconds { get; init; }

    /// <summary>The most requests waiting for the device; one more is rejected at once. Default 64.</summary>
    public int MaxQueueSize { get; init; } = 64;

    /// <summary>
    /// A request still queued after this many milliseconds is rejected (it is answered then, not when the device
    /// frees up). Null (the default): no limit.
    /// </summary>
    public int? QueueTimeoutMilliseconds { get; init; }

    /// <summary>This, or an <see cref="ArgumentOutOfRangeException"/> naming the setting that is out of range.</summary>
    public BatchingOptions Validate()
    {
        static void Check(bool ok, string name, long value, string expected)
        {
            if (!ok) throw new ArgumentOutOfRangeException(null, string.Create(CultureInfo.InvariantCulture, $"batching: {name} is {value}; expected {expected}"));
        }
        Check(MaxBatchSize is >= 1 and <= 4096, "the max batch size", MaxBatchSize, "1 to 4096 images");
        Check(MaxQueueDelayMicroseconds is >= 0 and <= 10_000_000, "the max queue delay", MaxQueueDelayMicroseconds, "0 to 10,000,000 microseconds");
        Check(MaxQueueSize is >= 1 and <= 1_000_000, "the max queue size", MaxQueueSize, "1 to 1,000,000 requests");
        if (QueueTimeoutMilliseconds is { } t) Check(t is >= 1 and <= 3_600_000, "the queue timeout", t, "1 to 3,600,000 milliseconds");
        return this;
    }
}
