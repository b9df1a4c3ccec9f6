using System.Globalization;
using System.Text;
using Xception.Gpu.Graph;

namespace Xception.Gpu.Architecture;

/// <summary>A Keras-style summary: one row per layer (name, type, output shape, parameters, inputs) and the totals.</summary>
public static class Summary
{
    public static string Render(Model model)
    {
        var sb = new StringBuilder();
        const int w1 = 44, w2 = 26, w3 = 12;
        string rule = new('_', 120), thick = new('=', 120);
        sb.AppendLine($"Model: \"{model.Name}\"");
        sb.AppendLine(rule);
        sb.AppendLine($"{"Layer (type)",-w1}{"Output Shape",-w2}{"Param #",-w3}Connected to");
        sb.AppendLine(thick);
        foreach (var l in model.Layers)
        {
            string shape = "(None, " + string.Join(", ", l.OutputShape) + ")";
            long count = l.Parameters.Sum(p => (long)p.Length);
            string inputs = string.Join(", ", l.Inputs.Select(i => i.Name));
            sb.AppendLine($"{Fit($"{l.Name} ({l.KerasType})", w1 - 1),-w1}{shape,-w2}{Num(count),-w3}{inputs}");
        }
        sb.AppendLine(thick);
        sb.AppendLine($"Total params: {Num(model.TotalParams)}");
        sb.AppendLine($"Trainable params: {Num(model.TrainableParams)}");
        sb.AppendLine($"Non-trainable params: {Num(model.TotalParams - model.TrainableParams)}");
        sb.Append(rule);
        return sb.ToString();
    }

    static string Num(long n) => n.ToString("#,0", CultureInfo.InvariantCulture);
    static string Fit(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
