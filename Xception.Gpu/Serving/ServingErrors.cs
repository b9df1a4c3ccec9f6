namespace Xception.Gpu.Serving;

/// <summary>Why a request did not succeed, in the categories a server counts (Triton's failure reasons).</summary>
public enum FailureReason
{
    /// <summary>Refused for load: the queue was full, the request waited past its queue timeout, or the server is draining.</summary>
    Rejected,
    /// <summary>The caller gave up (a client that disconnected) before its batch ran.</summary>
    Canceled,
    /// <summary>The request itself was wrong: a bad image or tensor, an unknown class, too many images.</summary>
    BadInput,
    /// <summary>The model failed on a valid request.</summary>
    Internal,
}

/// <summary>
/// A request refused for load (<see cref="FailureReason.Rejected"/>): the caller may retry later. The message says
/// which limit was hit.
/// </summary>
public sealed class RequestRejectedException(string message) : XceptionException(message);

/// <summary>A request that the model cannot take as given (<see cref="FailureReason.BadInput"/>); the message says why.</summary>
public sealed class BadRequestException(string message, Exception? inner = null) : XceptionException(message, inner);
