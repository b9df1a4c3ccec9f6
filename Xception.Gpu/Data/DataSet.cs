namespace Xception.Gpu.Data;

/// <summary>
/// What <see cref="DataSources.Open"/> returns: the training source and, where the data set ships one, its
/// separate test split (Fashion-MNIST's t10k files, CIFAR-10's test_batch.bin), which must never be trained on.
/// </summary>
public sealed record DataSet(IDataSource Train, IDataSource? Test);
