namespace Xception.Gpu.Training;

/// <summary>Classification metrics computed on the host from a batch of logits.</summary>
public static class Metrics
{
    /// <summary>Number of rows whose label is among the k largest logits (ties broken by index).</summary>
    public static int TopKCorrect(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, int k)
    {
        int correct = 0;
        for (int r = 0; r < labels.Length; r++)
        {
            var row = logits.Slice(r * classes, classes);
            float target = row[labels[r]];
            int above = 0;
            for (int j = 0; j < classes; j++)
                if (row[j] > target || (row[j] == target && j < labels[r])) above++;
            if (above < k) correct++;
        }
        return correct;
    }

    /// <summary>
    /// Mean average precision over the top <paramref name="n"/> predictions per image (MAP@100 is the paper's
    /// FastEval14k metric for JFT): for each image, the average of precision@i over the ranks i (1..n) holding a
    /// true label, divided by min(n, number of true labels); images without labels are left out.
    /// </summary>
    public static (double Sum, int Count) AveragePrecisionAtN(ReadOnlySpan<float> scores, ReadOnlySpan<float> targets, int classes, int n = 100)
    {
        double sum = 0;
        int count = 0;
        int rows = targets.Length / classes;
        for (int r = 0; r < rows; r++)
        {
            var s = scores.Slice(r * classes, classes).ToArray();
            var t = targets.Slice(r * classes, classes);
            int positives = 0;
            foreach (var v in t) if (v > 0.5f) positives++;
            if (positives == 0) continue;
            var order = Enumerable.Range(0, classes).OrderByDescending(j => s[j]).ThenBy(j => j).Take(n).ToArray();
            int hits = 0;
            double ap = 0;
            for (int i = 0; i < order.Length; i++)
                if (t[order[i]] > 0.5f) { hits++; ap += hits / (double)(i + 1); }
            sum += ap / Math.Min(n, positives);
            count++;
        }
        return (sum, count);
    }
}
