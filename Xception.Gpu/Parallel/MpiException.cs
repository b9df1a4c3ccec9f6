namespace Xception.Gpu.Parallel;

/// <summary>
/// Open MPI could not be used: the library is missing or too old, or an MPI call failed. Its own type so
/// that the caller that asked for MPI can say how it was asked (the CLI names its option).
/// </summary>
public sealed class MpiException(string message) : XceptionException(message);
