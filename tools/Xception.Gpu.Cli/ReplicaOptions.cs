using System.CommandLine;
using Xception.Gpu.Parallel;

namespace Xception.Gpu.Cli;

/// <summary>
/// The options that place a run on devices and processes: --device or --devices, --cpu-threads, and
/// --distributed mpi. Opens the devices (and MPI); disposing closes them.
/// </summary>
sealed class ReplicaOptions : IDisposable
{
    /// <summary>The options, for the commands that place a run on devices (train, bench).</summary>
    public static IEnumerable<Option> Group =>
    [
        DeviceOption(),
        PrecisionOption.Declare(),
        Value("devices", "L", "data parallelism: one replica per device, e.g. cpu:0,cpu:1, cuda:0,cuda:1, or a count: " +
                              "cuda*2, cpu*3 (each batch is split over the replicas, gradients averaged)"),
        Flag("sync-bn", "batch-norm statistics over the whole batch (all replicas), not each replica's share"),
        Value("bucket-mb", "M", "overlap the gradient all-reduce with the backward pass in buckets of M MB (default 25; 0: after it)"),
        Value("cpu-threads", "N", "cores each CPU replica runs on (default: the process's cores shared among its CPU replicas)"),
        Choice("distributed", ["mpi"], "one process per rank under mpirun -np N (Open MPI); each rank drives its --devices " +
                                       "(cuda*K takes the K GPUs after those of the ranks before it on the machine), the " +
                                       "all-reduce spans all ranks, rank 0 writes checkpoints and logs"),
    ];

    public List<Device> Devices { get; } = new();
    public MpiCollective? Mpi { get; }
    public bool SyncBatchNorm { get; }
    public long BucketBytes { get; }
    public bool IsRoot => Mpi is null || Mpi.Rank == 0;

    /// <summary>Replicas in the whole run.</summary>
    public int GlobalReplicas => Devices.Count * (Mpi?.Size ?? 1);

    public ReplicaOptions(Args a)
    {
        SyncBatchNorm = a.Flag("sync-bn");
        BucketBytes = (long)(a.Double("bucket-mb", 25, 0, 1 << 20) * (1 << 20));
        if (a.String("device") is not null && a.String("devices") is not null)
            throw new UsageException("give --device (one device) or --devices (replicas), not both");
        switch (a.String("distributed")?.ToLowerInvariant())
        {
            case null: break;
            case "mpi":
                if (!MpiCollective.LaunchedByMpirun)
                    throw new UsageException("--distributed mpi: start the ranks with mpirun, e.g. mpirun -np 2 xception train --distributed mpi ...");
                try
                {
                    Mpi = MpiCollective.Start();
                }
                catch (MpiException e)
                {
                    throw new XceptionException($"--distributed mpi: {e.Message}", e);
                }
                break;
            case var other: throw new UsageException($"--distributed must be mpi, got '{other}'");
        }
        try
        {
            int localRank = int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_RANK"), out var lr) ? lr : 0;
            IReadOnlyList<DeviceSpec> specs;
            if (a.String("devices") is { } list)
            {
                specs = ParseDevices(list, 0);
                if (Mpi is not null && list.Contains('*')) specs = ParseDevices(list, localRank * specs.Count);
            }
            else specs = [DeviceSpec.Parse(a.String("device", Mpi is null ? "auto" : "cpu"))];
            int cpuReplicas = specs.Count(s => s.Kind == DeviceKind.Cpu);
            int? cores = a.String("cpu-threads") is null ? null : a.Int("cpu-threads", 1, 1, Device.MaxCpuThreads);
            if (cores > Environment.ProcessorCount)
                Console.Error.WriteLine($"xception: warning: --cpu-threads {cores} is more than this machine's {Environment.ProcessorCount} cores: slower; " +
                                        "use it only to reproduce a run made with that many (the count sets how sums are chunked)");
            if (cores is null && cpuReplicas > 1) cores = Math.Max(1, Environment.ProcessorCount / cpuReplicas);
            var precision = PrecisionOption.Read(a);
            foreach (var s in specs) Devices.Add(Device.Open(s, s.Kind == DeviceKind.Cpu ? cores : null));
            foreach (var d in Devices) d.Precision = precision;

            if (Mpi is { Size: > 1 } mpi)
            {
                // Every rank must hold as many replicas: the global ranks are process x local replica.
                var counts = new double[mpi.Size];
                counts[mpi.Rank] = Devices.Count;
                mpi.AllReduceSum(counts);
                if (counts.Any(c => c != Devices.Count))
                    throw new XceptionException($"--distributed mpi: every rank needs as many devices; they have {string.Join(", ", counts)}");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The --devices list, its errors naming the option.</summary>
    static IReadOnlyList<DeviceSpec> ParseDevices(string list, int firstIndex)
    {
        try
        {
            return DeviceSpec.ParseList(list, firstIndex);
        }
        catch (DeviceListException e)
        {
            throw new DeviceException(e.Describe("--devices"), e);
        }
    }

    /// <summary>One line for the run's header.</summary>
    public string Describe(int batch)
    {
        string where = string.Join(", ", Devices.Select(d => d.IsCpu && Devices.Count > 1 ? $"{d} ({d.CpuCores} core{(d.CpuCores == 1 ? "" : "s")})" : d.ToString()));
        if (GlobalReplicas == 1) return $"device {where}";
        var shares = Data.BatchShard.Shares(batch, GlobalReplicas);
        string split = shares.Distinct().Count() == 1 ? $"{shares[0]} each" : $"{shares.Max()} or {shares.Min()} each";
        return (Mpi is null ? $"devices {where}" : $"{Mpi.Size} MPI ranks x devices {where}") +
               $": {GlobalReplicas} replicas, batch {batch} split {split}, batch norm {(SyncBatchNorm ? "synchronized" : "per replica")}";
    }

    public void Dispose()
    {
        foreach (var d in Devices) d.Dispose();
        Devices.Clear();
    }
}
