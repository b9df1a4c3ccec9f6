namespace Xception.Gpu.Diagnostics;

/// <summary>A program the diagnostics run (ptxas, a disassembler) could not be started, failed, timed out or printed what was not expected.</summary>
public sealed class ExternalToolException(string message) : XceptionException(message);
