using System.Globalization;
using System.Text;
using Xception.Gpu.Serving;

namespace Xception.Gpu.Cli.Serving;

/// <summary>
/// /metrics in Prometheus' text format (version 0.0.4), with the names and meanings of NVIDIA Triton's metrics for
/// the counters (nv_inference_*: requests succeeded and failed by reason, inferences, executions, pending requests,
/// cumulative request, queue and compute time in microseconds), and two histograms of this server's:
/// xception_request_duration_seconds and xception_batch_size.
/// </summary>
static class Metrics
{
    public static string ReasonLabel(FailureReason r) => r switch
    {
        FailureReason.Rejected => "REJECTED",
        FailureReason.Canceled => "CANCELED",
        FailureReason.BadInput => "BAD_INPUT",
        _ => "INTERNAL",
    };

    public static string Render(IEnumerable<ServedModel> models)
    {
        var list = models.ToList();
        var sb = new StringBuilder();
        void Family(string name, string type, string help, Func<ServedModel, IEnumerable<(string Labels, double Value)>> values)
        {
            sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            foreach (var m in list)
                foreach (var (labels, value) in values(m))
                    sb.Append(name).Append('{').Append(Labels(m)).Append(labels).Append("} ").Append(Number(value)).Append('\n');
        }
        IEnumerable<(string, double)> One(double v) => [("", v)];
        static double Us(long ns) => ns / 1000.0;

        Family("nv_inference_request_success", "counter", "Number of successful inference requests, all batch sizes", m => One(m.Batcher.Stats.Success));
        Family("nv_inference_request_failure", "counter", "Number of failed inference requests, all batch sizes, by reason (REJECTED: queue full, queue timeout or shutting down; CANCELED: client gone; BAD_INPUT; INTERNAL)",
            m => Enum.GetValues<FailureReason>().Select(r => ($",reason=\"{ReasonLabel(r)}\"", (double)m.Batcher.Stats.Failures(r))));
        Family("nv_inference_count", "counter", "Number of inferences performed (images; does not include cached requests)", m => One(m.Batcher.Stats.Inferences));
        Family("nv_inference_exec_count", "counter", "Number of model executions performed (device batches; inferences / executions is the average batch)", m => One(m.Batcher.Stats.Executions));
        Family("nv_inference_pending_request_count", "gauge", "Instantaneous number of pending requests awaiting execution", m => One(m.Batcher.Stats.Pending));
        Family("nv_inference_request_duration_us", "counter", "Cumulative inference request duration in microseconds (successful requests)", m => One(Us(m.Batcher.Stats.SuccessNanoseconds)));
        Family("nv_inference_queue_duration_us", "counter", "Cumulative inference queuing duration in microseconds", m => One(Us(m.Batcher.Stats.QueueNanoseconds)));
        Family("nv_inference_compute_infer_duration_us", "counter", "Cumulative compute inference duration in microseconds (each request counts its batch's time)", m => One(Us(m.Batcher.Stats.ComputeNanoseconds)));
        Histogram(sb, list, "xception_request_duration_seconds", "Inference request duration, arrival to answer, every outcome", m => m.Batcher.Stats.RequestSeconds);
        Histogram(sb, list, "xception_batch_size", "Images per model execution", m => m.Batcher.Stats.BatchSize);
        return sb.ToString();
    }

    static void Histogram(StringBuilder sb, List<ServedModel> models, string name, string help, Func<ServedModel, Histogram> of)
    {
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        sb.Append("# TYPE ").Append(name).Append(" histogram\n");
        foreach (var m in models)
        {
            var h = of(m);
            var (cumulative, count, sum) = h.Snapshot();
            for (int i = 0; i < h.UpperBounds.Count; i++)
                sb.Append(name).Append("_bucket{").Append(Labels(m)).Append(",le=\"").Append(Number(h.UpperBounds[i])).Append("\"} ").Append(cumulative[i]).Append('\n');
            sb.Append(name).Append("_bucket{").Append(Labels(m)).Append(",le=\"+Inf\"} ").Append(cumulative[^1]).Append('\n');
            sb.Append(name).Append("_sum{").Append(Labels(m)).Append("} ").Append(Number(sum)).Append('\n');
            sb.Append(name).Append("_count{").Append(Labels(m)).Append("} ").Append(count).Append('\n');
        }
    }

    static string Labels(ServedModel m) => $"model=\"{m.Name.Replace("\\", "\\\\").Replace("\"", "\\\"")}\",version=\"{ServedModel.Version}\"";

    static string Number(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
