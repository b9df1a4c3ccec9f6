namespace Xception.Gpu.Training;

/// <summary>How the learning rate moves over training.</summary>
public enum DecayKind
{
    /// <summary>Constant.</summary>
    None,
    /// <summary>lr * rate^floor(epoch / every): the ImageNet recipe (0.94 every 2 epochs).</summary>
    ExponentialEpochs,
    /// <summary>lr * rate^floor(samples / every): the JFT recipe (0.9 every 3,000,000 samples).</summary>
    ExponentialSamples,
    /// <summary>lr * rate^(number of boundaries passed), boundaries in epochs.</summary>
    Step,
    /// <summary>Cosine from lr to 0 over the run.</summary>
    Cosine,
}

/// <summary>
/// The learning rate as a pure function of the training position (step, samples seen, epoch progress), so
/// a resumed run continues on the same curve. A linear warm-up over the first WarmupSteps multiplies it.
/// </summary>
public sealed record LearningRateSchedule
{
    public double BaseRate { get; init; } = 0.01;
    public DecayKind Decay { get; init; } = DecayKind.None;
    public double Rate { get; init; } = 0.94;
    /// <summary>Epochs (ExponentialEpochs) or samples (ExponentialSamples) between decays.</summary>
    public double Every { get; init; } = 2;
    /// <summary>Epoch boundaries for <see cref="DecayKind.Step"/>.</summary>
    public double[] Boundaries { get; init; } = [];
    public long WarmupSteps { get; init; }
    /// <summary>Total optimizer steps of the run (for cosine).</summary>
    public long TotalSteps { get; init; } = 1;

    /// <param name="step">optimizer steps done before this one</param>
    /// <param name="samples">training samples seen before this step</param>
    /// <param name="epoch">epochs done, with the fraction of the current one</param>
    public double At(long step, long samples, double epoch)
    {
        double lr = Decay switch
        {
            DecayKind.ExponentialEpochs => BaseRate * Math.Pow(Rate, Math.Floor(epoch / Every)),
            DecayKind.ExponentialSamples => BaseRate * Math.Pow(Rate, Math.Floor(samples / Every)),
            DecayKind.Step => BaseRate * Math.Pow(Rate, Boundaries.Count(b => epoch >= b)),
            DecayKind.Cosine => BaseRate * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1.0, (double)step / Math.Max(1, TotalSteps)))),
            _ => BaseRate,
        };
        if (WarmupSteps > 0 && step < WarmupSteps) lr *= (step + 1) / (double)WarmupSteps;
        return lr;
    }

    public override string ToString() => Decay switch
    {
        DecayKind.ExponentialEpochs => $"{BaseRate} x {Rate} every {Every} epochs",
        DecayKind.ExponentialSamples => $"{BaseRate} x {Rate} every {Every:N0} samples",
        DecayKind.Step => $"{BaseRate} x {Rate} at epochs {string.Join(", ", Boundaries)}",
        DecayKind.Cosine => $"{BaseRate}, cosine to 0",
        _ => $"{BaseRate}",
    } + (WarmupSteps > 0 ? $", linear warm-up over {WarmupSteps} steps" : "");
}
