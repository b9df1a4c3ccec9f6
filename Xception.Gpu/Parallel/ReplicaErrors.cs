namespace Xception.Gpu.Parallel;

/// <summary>
/// A process of the run could not go on (its data failed to load) and told the others at the start of a step;
/// every process throws this at the same point, so all stop cleanly, with the last checkpoint written whole.
/// On the process that failed, <see cref="Exception.InnerException"/> is the cause.
/// </summary>
public sealed class RunStoppedException(string message, Exception? inner = null) : XceptionException(message, inner)
{
    /// <summary>The first process that failed.</summary>
    public int FailedProcess { get; init; }
}

/// <summary>A replica failed; the run stops. <see cref="Exception.InnerException"/> is the replica's error.</summary>
public sealed class ReplicaFailedException(int rank, string device, Exception inner)
    : XceptionException($"replica {rank} on {device} failed: {inner.Message}; the run stops", inner)
{
    public int Rank { get; } = rank;
}

/// <summary>This replica was released from a collective because another one failed.</summary>
public sealed class ReplicaAbortedException() : XceptionException("another replica failed; this one stops too");

/// <summary>Replicas that should hold the same weights do not (their checksums differ): the run is no longer synchronous.</summary>
public sealed class ReplicasDriftedException(string message) : XceptionException(message);
