using Xception.Gpu.Data;

namespace Xception.Gpu.Tests.Data;

/// <summary>A source that forwards to another and lets a test see or disturb each load.</summary>
internal class WrappedSource(IDataSource inner) : IDataSource
{
    int loads;

    /// <summary>Loads started so far.</summary>
    public int Loads => Volatile.Read(ref loads);

    public int Count => inner.Count;
    public int Classes => inner.Classes;
    public IReadOnlyList<string> ClassNames => inner.ClassNames;
    public bool MultiLabel => inner.MultiLabel;
    public string Description => inner.Description;

    public RawImage Load(int index)
    {
        Interlocked.Increment(ref loads);
        Before(index);
        return After(inner.Load(index));
    }

    protected virtual void Before(int index) { }
    protected virtual RawImage After(RawImage image) => image;
}

/// <summary>Sleeps a random 0-3 ms before each load (truly random: the point is to scramble thread timing).</summary>
internal sealed class JitterSource(IDataSource inner) : WrappedSource(inner)
{
    protected override void Before(int index) => Thread.Sleep(Random.Shared.Next(4));
}

/// <summary>Blocks every load until <see cref="Open"/> is called.</summary>
internal sealed class GateSource(IDataSource inner) : WrappedSource(inner)
{
    readonly ManualResetEventSlim gate = new(false);
    public void Open() => gate.Set();
    protected override void Before(int index) => gate.Wait();
}

/// <summary>Gives every image the label <paramref name="label"/>, right or wrong.</summary>
internal sealed class RelabelSource(IDataSource inner, int label) : WrappedSource(inner)
{
    protected override RawImage After(RawImage image) => image with { Label = label };
}
