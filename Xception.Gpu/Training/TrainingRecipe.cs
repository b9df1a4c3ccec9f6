namespace Xception.Gpu.Training;

/// <summary>
/// The paper's two training set-ups (section 4.3): the optimizer, the learning-rate schedule and the dropout a run
/// starts from, and whether the outputs are multi-label sigmoids. Settings given explicitly override them.
/// </summary>
/// <param name="Name">the recipe's name</param>
/// <param name="Optimizer">the optimizer and its constants</param>
/// <param name="Schedule">the learning rate over the run</param>
/// <param name="Dropout">dropout before the classifier</param>
/// <param name="MultiLabel">whether it trains multi-label sigmoid outputs (the data must be multi-label)</param>
public sealed record TrainingRecipe(string Name, OptimizerSettings Optimizer, LearningRateSchedule Schedule, float Dropout, bool MultiLabel)
{
    /// <summary>ImageNet: SGD with momentum 0.9, lr 0.045 decayed by 0.94 every 2 epochs, weight decay 1e-5, dropout 0.5.</summary>
    public static TrainingRecipe ImageNet { get; } = new("imagenet",
        new OptimizerSettings { Kind = OptimizerKind.Sgd, Momentum = 0.9f, WeightDecay = 1e-5f },
        new LearningRateSchedule { BaseRate = 0.045, Decay = DecayKind.ExponentialEpochs, Rate = 0.94, Every = 2 }, 0.5f, false);

    /// <summary>JFT: RMSprop with momentum 0.9, lr 0.001 decayed by 0.9 every 3,000,000 samples, multi-label sigmoid outputs, no dropout.</summary>
    public static TrainingRecipe Jft { get; } = new("jft",
        new OptimizerSettings { Kind = OptimizerKind.RmsProp, Momentum = 0.9f, Rho = 0.9f },
        new LearningRateSchedule { BaseRate = 0.001, Decay = DecayKind.ExponentialSamples, Rate = 0.9, Every = 3_000_000 }, 0f, true);

    /// <summary>The recipes, by name.</summary>
    public static IReadOnlyList<TrainingRecipe> All { get; } = [ImageNet, Jft];

    /// <summary>The recipe named <paramref name="name"/> (any case), or null when there is none.</summary>
    public static TrainingRecipe? Find(string name) => All.FirstOrDefault(r => r.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
}
