namespace Xception.Gpu.Parallel;

/// <summary>An all-reduce among the replicas of a process failed: a replica did not arrive in time, or the replicas sent different buffers.</summary>
public sealed class CollectiveException(string message) : XceptionException(message);
