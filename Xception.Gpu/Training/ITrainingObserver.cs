namespace Xception.Gpu.Training;

/// <summary>What the trainer reports while it runs (the CLI draws progress from it).</summary>
public interface ITrainingObserver
{
    void OnStart(TrainPosition from, int epochs, int stepsPerEpoch, long? maxSteps) { }
    void OnStep(TrainPosition at, double loss, double lr, EvalResult running, double imagesPerSecond) { }
    void OnEpoch(EpochReport report) { }
    void OnCheckpoint(string path) { }
    void OnWarning(string message) { }
}

/// <summary>One finished epoch (or the partial epoch a step limit ended).</summary>
public sealed record EpochReport(int Epoch, long Step, double LearningRate, EvalResult Train, EvalResult? Validation, double Seconds, double ImagesPerSecond);
