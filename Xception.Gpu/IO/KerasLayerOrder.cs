using Xception.Gpu.Graph;

namespace Xception.Gpu.IO;

/// <summary>
/// The order of <c>model.layers</c> in a Keras functional model, which Keras' <c>load_weights</c> for HDF5 files
/// relies on: it pairs the file's layers that have weights with the model's BY ORDER (names are not compared), so a
/// file whose <c>layer_names</c> follow another order fails to load ("layer #4 ... expects 2 weights, but the saved
/// weights have 1"). Keras (functional.py, _map_graph_network; tfjs-layers does the same) orders layers by depth,
/// the longest path to the output, deepest first (the input), and layers of equal depth by when a depth-first
/// walk from the output, inputs in order, first reaches them. Xception's shortcut convolution thus comes after the
/// main branch's batch norm (block2_sepconv2_bn, conv2d_1, block2_pool, batch_normalization_1, add_1), while the
/// builder creates it first, as Keras' code does.
/// </summary>
internal static class KerasLayerOrder
{
    public static IReadOnlyList<Layer> Of(Model model)
    {
        // Keras' _build_map: a depth-first walk from the output; 'first' numbers layers as first reached, 'finished'
        // lists them as finished (a topological order, inputs first).
        var first = new Dictionary<Layer, int>();
        var finished = new List<Layer>();
        var done = new HashSet<Layer>();
        var stack = new Stack<(Layer Layer, int Next)>();
        stack.Push((model.Output, 0));
        first[model.Output] = 0;
        while (stack.Count > 0)
        {
            var (layer, next) = stack.Pop();
            if (next < layer.Inputs.Count)
            {
                stack.Push((layer, next + 1));
                var input = layer.Inputs[next];
                if (done.Contains(input)) continue;
                first.TryAdd(input, first.Count);
                stack.Push((input, 0));
                continue;
            }
            if (done.Add(layer)) finished.Add(layer);
        }
        // Depths from the output down: a layer is one deeper than the deepest layer that reads it.
        var depth = new Dictionary<Layer, int>();
        for (int i = finished.Count - 1; i >= 0; i--)
        {
            var layer = finished[i];
            int d = depth.GetValueOrDefault(layer);
            depth[layer] = d;
            foreach (var input in layer.Inputs) depth[input] = Math.Max(depth.GetValueOrDefault(input), d + 1);
        }
        // A layer that does not lead to the output is no part of a Keras model; kept at the end so no weight is lost.
        return finished.OrderByDescending(l => depth[l]).ThenBy(l => first[l]).Concat(model.Layers.Where(l => !depth.ContainsKey(l))).ToList();
    }
}
