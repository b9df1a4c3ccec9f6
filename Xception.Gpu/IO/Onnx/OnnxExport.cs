using Google.Protobuf;
using Onnx;
using Xception.Gpu.Graph;
using Xception.Gpu.Graph.Layers;
using Xception.Gpu.Ops;
using static Xception.Gpu.IO.Onnx.OnnxGraph;

namespace Xception.Gpu.IO.Onnx;

/// <summary>
/// Writes a built <see cref="Model"/> as a standard ONNX graph for inference, the way tf2onnx writes a Keras model:
/// <list type="bullet">
/// <item>one float32 input in NHWC (batch, height, width, channels) named after Keras' input layer (<c>input_1</c>),
/// followed by a Transpose to NCHW, ONNX's layout for Conv and pooling;</item>
/// <item>one node per Keras layer, named after it (a separable convolution adds a <c>NAME/depthwise</c> node before
/// its pointwise one; pooling adds <c>NAME/flatten</c>); every tensor is named after the Keras layer whose output
/// it is;</item>
/// <item>each batch norm that reads a convolution folded into it (the convolution gains a bias; its doc string says
/// so), other batch norms as BatchNormalization; dropout left out (inference);</item>
/// <item>one output named after Keras' output layer: <c>predictions</c> (softmax probabilities, or logits) or, without
/// the classifier, the pooling layer (<c>avg_pool</c>, <c>max_pool</c>) or the last activation (NHWC maps).</item>
/// </list>
/// Initializers are named <c>layer/weight</c> (<c>block1_conv1/kernel</c>, <c>block1_conv1/bias</c> for a folded
/// batch norm's offset). The graph comes from walking the model's layers, so any configuration the builder makes
/// (no residuals, an activation inside the separable convolutions, channel segments, the small model, no top)
/// exports; a layer the export does not know is refused with an <see cref="OnnxExportException"/>.
/// <code>
/// OnnxExport.Write(model, "xception.onnx", new OnnxExportOptions { Logits = true });
/// </code>
/// </summary>
public static class OnnxExport
{
    /// <summary>The producer name written into every file.</summary>
    public const string Producer = "Xception.Gpu";

    /// <summary>Writes the model to <paramref name="path"/> atomically (a temporary file, then a rename).</summary>
    public static void Write(Model model, string path, OnnxExportOptions? options = null)
    {
        var proto = Build(model, options);
        AtomicFile.Write(path, s => proto.WriteTo(s));
    }

    /// <summary>The serialized ONNX model (a protobuf <c>ModelProto</c>).</summary>
    public static byte[] ToBytes(Model model, OnnxExportOptions? options = null) => Build(model, options).ToByteArray();

    /// <summary>The ONNX model as OnnxSharp's protobuf message.</summary>
    public static ModelProto Build(Model model, OnnxExportOptions? options = null)
    {
        var o = (options ?? new OnnxExportOptions()).Validate();
        model.SyncToHost();
        var graph = new GraphWalk(model, o).Run();
        var m = new ModelProto
        {
            IrVersion = IrVersion(o.Opset),
            ProducerName = Producer,
            ProducerVersion = typeof(OnnxExport).Assembly.GetName().Version?.ToString(3) ?? "0.0.0",
            ModelVersion = 1,
            DocString = Describe(model, o),
            Graph = graph,
        };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = o.Opset });
        m.MetadataProps.Add(new StringStringEntryProto { Key = "input_layout", Value = "NHWC" });
        m.MetadataProps.Add(new StringStringEntryProto { Key = "output", Value = OutputKind(model, o) });
        if (o.Config is { } c) m.MetadataProps.Add(new StringStringEntryProto { Key = "xception_gpu_config", Value = c.ToJson() });
        return m;
    }

    /// <summary>The lowest IR version that carries the opset (ONNX's versioning table): older readers can load it.</summary>
    static long IrVersion(int opset) => opset switch { <= 14 => 7, <= 18 => 8, <= 20 => 9, _ => 10 };

    static string OutputKind(Model model, OnnxExportOptions o) => model.Output switch
    {
        DenseLayer => o.Logits ? "logits" : "probabilities",
        { OutputShape.Length: 1 } => "features",
        _ => "feature maps (NHWC)",
    };

    static string Describe(Model model, OnnxExportOptions o)
    {
        var input = model.Input;
        string size = o.DynamicSize ? "height x width" : $"{input.OutputShape[0]} x {input.OutputShape[1]}";
        string text = $"{model.Name} with Keras' layer names, exported by {Producer} for inference. Input '{input.Name}': NHWC float32, " +
                      $"{size} x {input.OutputShape[2]}, preprocessed as Keras' 'tf' mode (x / 127.5 - 1, RGB). " +
                      $"Output '{model.Output.Name}': {OutputKind(model, o)}. Batch norms folded into the convolutions they follow.";
        return o.Config is { } c ? $"{text} Configuration: {c.ToJson()}" : text;
    }

    /// <summary>One pass over the layers in model (topological) order, emitting each layer's nodes.</summary>
    sealed class GraphWalk
    {
        readonly Model model;
        readonly OnnxExportOptions o;
        readonly OnnxGraph g;
        readonly Dictionary<Layer, string> tensors = new();
        readonly Dictionary<Layer, int> readers;
        readonly HashSet<Layer> folded = new();
        readonly Layer last;
        readonly string? tail;

        public GraphWalk(Model model, OnnxExportOptions options)
        {
            this.model = model;
            o = options;
            g = new OnnxGraph(model.Name);
            readers = model.Layers.SelectMany(l => l.Inputs).GroupBy(l => l).ToDictionary(x => x.Key, x => x.Count());
            last = model.Output;
            // The last layer's node writes an inner tensor when something follows it: NCHW maps go back to NHWC,
            // logits go through the softmax that Keras' 'predictions' layer applies.
            tail = last.OutputShape.Length == 3 ? "nchw" : last is DenseLayer && !o.Logits ? "logits" : null;
        }

        object Batch => o.Batch is { } b ? b : "batch";

        public GraphProto Run()
        {
            var input = model.Input;
            var s = input.OutputShape;
            g.Proto.Input.Add(Value(input.Name, [Batch, o.DynamicSize ? "height" : (object)s[0], o.DynamicSize ? "width" : (object)s[1], s[2]],
                "images, NHWC float32, preprocessed as Keras' 'tf' mode: x / 127.5 - 1 (RGB)"));
            tensors[input] = g.Node("Transpose", $"{input.Name}/nchw", [input.Name], $"{input.Name}/nchw", "NHWC to NCHW",
                Ints("perm", 0, 3, 1, 2));
            foreach (var layer in model.Layers)
            {
                if (layer == input || folded.Contains(layer)) continue;
                Emit(layer);
            }
            Finish();
            return g.Proto;
        }

        /// <summary>The name of the tensor a layer's node writes.</summary>
        string Out(Layer l) => l == last && tail is not null ? $"{l.Name}/{tail}" : l.Name;

        string In(Layer l, int i = 0) => tensors[l.Inputs[i]];

        /// <summary>Height and width of a layer's input for fixed-size pads, or null for a symbolic size.</summary>
        (int, int)? InputHW(Layer l) => o.DynamicSize ? null : (l.Inputs[0].OutputShape[0], l.Inputs[0].OutputShape[1]);

        /// <summary>
        /// The batch norm to fold into convolution <paramref name="conv"/>: its only reader, when that is a batch norm
        /// (in inference a batch norm is a per-channel affine map, which the convolution's weights and a bias absorb).
        /// </summary>
        BatchNormLayer? FoldTarget(Layer conv)
        {
            if (conv == last || readers.GetValueOrDefault(conv) != 1) return null;
            var bn = model.Layers.Skip(conv.Index + 1).FirstOrDefault(l => l.Inputs.Contains(conv)) as BatchNormLayer;
            if (bn is not null) folded.Add(bn);
            return bn;
        }

        void Emit(Layer layer)
        {
            switch (layer)
            {
                case Conv2DLayer c: Conv(c); break;
                case SeparableConv2DLayer s: Separable(s); break;
                case BatchNormLayer bn: BatchNorm(bn); break;
                case ActivationLayer a:
                    tensors[a] = a.Kind switch
                    {
                        ActivationKind.Relu => g.Node("Relu", a.Name, [In(a)], Out(a)),
                        ActivationKind.Elu => g.Node("Elu", a.Name, [In(a)], Out(a), null, Float("alpha", Activation.EluAlpha)),
                        _ => g.Node("Identity", a.Name, [In(a)], Out(a)),
                    };
                    break;
                case AddLayer add: tensors[add] = g.Node("Add", add.Name, [In(add, 0), In(add, 1)], Out(add)); break;
                case MaxPoolLayer p:
                    tensors[p] = g.Node("MaxPool", p.Name, [In(p)], Out(p), null, Ints("kernel_shape", p.Pool, p.Pool),
                        Ints("strides", p.Stride, p.Stride), OnnxPadding.For(p.Name, p.Padding, p.Pool, p.Stride, InputHW(p)));
                    break;
                case GlobalPoolLayer gp:
                    var pooled = g.Node(gp.Max ? "GlobalMaxPool" : "GlobalAveragePool", gp.Name, [In(gp)], $"{gp.Name}/nc11");
                    tensors[gp] = g.Node("Flatten", $"{gp.Name}/flatten", [pooled], Out(gp), "(N, C, 1, 1) to (N, C)", Int("axis", 1));
                    break;
                case DropoutLayer d: tensors[d] = In(d); break; // identity in inference
                case DenseLayer d: Dense(d); break;
                default:
                    throw new OnnxExportException($"layer {layer.Name} ({layer.KerasType}) has no ONNX export; the export knows " +
                        "Conv2D, SeparableConv2D, BatchNormalization, Activation, Add, MaxPooling2D, global pooling, Dropout and Dense");
            }
        }

        void Conv(Conv2DLayer c)
        {
            int cin = c.Inputs[0].OutputShape[2] / c.Groups;
            var w = OnnxWeights.Oihw(OnnxWeights.Host(c, "kernel"), c.Kernel, c.Kernel, cin, c.Filters);
            var attrs = new List<AttributeProto>
            {
                Ints("kernel_shape", c.Kernel, c.Kernel), Ints("strides", c.Stride, c.Stride),
                OnnxPadding.For(c.Name, c.Padding, c.Kernel, c.Stride, InputHW(c)),
            };
            if (c.Groups > 1) attrs.Add(Int("group", c.Groups));
            WeightedConv(c, c.Name, In(c), w, [c.Filters, cin, c.Kernel, c.Kernel], attrs);
        }

        /// <summary>
        /// Keras' SeparableConv2D: the spatial part (depthwise: Conv with group = channels; with k segments, group = k),
        /// an activation when the configuration puts one between, then the pointwise 1x1 Conv, named after the layer,
        /// into which the batch norm that follows is folded.
        /// </summary>
        void Separable(SeparableConv2DLayer s)
        {
            int c = s.Inputs[0].OutputShape[2];
            // depthwise_kernel [k, k, C, 1], or spatial_kernel [k, k, C / segments, C] when grouped.
            var spatial = s.Parameters[0];
            bool depthwise = spatial.Name == "depthwise_kernel";
            int perGroup = depthwise ? 1 : spatial.KerasShape[2];
            int groups = c / perGroup;
            var sw = depthwise
                ? OnnxWeights.DepthwiseOihw(spatial.Host, s.Kernel, s.Kernel, c)
                : OnnxWeights.Oihw(spatial.Host, s.Kernel, s.Kernel, perGroup, c);
            string part = depthwise ? "depthwise" : "spatial";
            var swName = g.Initializer($"{s.Name}/{spatial.Name}", [c, perGroup, s.Kernel, s.Kernel], sw);
            var mid = g.Node("Conv", $"{s.Name}/{part}", [In(s), swName], $"{s.Name}/{part}",
                $"{s.Name}: {(groups == c ? "depthwise" : $"grouped ({groups} segments)")} {s.Kernel}x{s.Kernel}",
                Ints("kernel_shape", s.Kernel, s.Kernel), Ints("strides", 1, 1),
                OnnxPadding.For(s.Name, s.Padding, s.Kernel, 1, InputHW(s)), Int("group", groups));
            if (s.Between != ActivationKind.None)
                mid = s.Between == ActivationKind.Relu
                    ? g.Node("Relu", $"{s.Name}/activation", [mid], $"{s.Name}/activation")
                    : g.Node("Elu", $"{s.Name}/activation", [mid], $"{s.Name}/activation", null, Float("alpha", Activation.EluAlpha));
            var pw = OnnxWeights.Oihw(OnnxWeights.Host(s, "pointwise_kernel"), 1, 1, c, s.Filters);
            WeightedConv(s, s.Name, mid, pw, [s.Filters, c, 1, 1], [Ints("kernel_shape", 1, 1), Ints("strides", 1, 1)], "pointwise_kernel");
        }

        /// <summary>A Conv node named <paramref name="name"/> with weight <paramref name="w"/> (OIHW), and the batch norm after it folded in when there is one.</summary>
        void WeightedConv(Layer layer, string name, string input, float[] w, long[] dims, List<AttributeProto> attrs, string weight = "kernel")
        {
            var bn = FoldTarget(layer);
            string doc = bn is null ? name : $"{name} + {bn.Name} folded (inference batch norm: W * gamma / sqrt(var + eps), bias beta - mean * gamma / sqrt(var + eps))";
            var inputs = new List<string> { input };
            if (bn is null) inputs.Add(g.Initializer($"{name}/{weight}", dims, w));
            else
            {
                var (fw, fb) = OnnxWeights.FoldBatchNorm(w, (int)dims[0], bn);
                inputs.Add(g.Initializer($"{name}/{weight}", dims, fw, $"{name}/{weight} with {bn.Name} folded in"));
                inputs.Add(g.Initializer($"{name}/bias", [dims[0]], fb, $"{bn.Name}'s beta - moving_mean * gamma / sqrt(moving_variance + epsilon)"));
            }
            var producer = (Layer?)bn ?? layer;
            tensors[producer] = g.Node("Conv", name, inputs, Out(producer), doc, [.. attrs]);
            if (bn is not null) tensors[layer] = tensors[producer];
        }

        /// <summary>A batch norm that does not follow a convolution: ONNX's BatchNormalization in inference.</summary>
        void BatchNorm(BatchNormLayer bn)
        {
            int c = bn.OutputShape[^1];
            var inputs = new List<string> { In(bn) };
            foreach (var w in new[] { "gamma", "beta", "moving_mean", "moving_variance" })
                inputs.Add(g.Initializer($"{bn.Name}/{w}", [c], OnnxWeights.Host(bn, w)));
            tensors[bn] = g.Node("BatchNormalization", bn.Name, inputs, Out(bn), null, Float("epsilon", bn.Epsilon));
        }

        void Dense(DenseLayer d)
        {
            if (d.Inputs[0].OutputShape.Length != 1)
                throw new OnnxExportException($"layer {d.Name} (Dense) reads ({string.Join(", ", d.Inputs[0].OutputShape)}); the export needs a flat input");
            int inputs = d.Inputs[0].OutputShape[0];
            var k = g.Initializer($"{d.Name}/kernel", [inputs, d.Units], OnnxWeights.Host(d, "kernel"));
            var b = g.Initializer($"{d.Name}/bias", [d.Units], OnnxWeights.Host(d, "bias"));
            tensors[d] = g.Node("Gemm", d.Name, [In(d), k, b], Out(d), $"{d.Name}: x @ kernel + bias (logits)");
        }

        /// <summary>The graph's output: back to NHWC for maps, the softmax for probabilities, under the last layer's name.</summary>
        void Finish()
        {
            var t = tensors[last];
            if (tail == "nchw") t = g.Node("Transpose", $"{last.Name}/nhwc", [t], last.Name, "NCHW to NHWC", Ints("perm", 0, 2, 3, 1));
            else if (tail == "logits") t = g.Node("Softmax", $"{last.Name}/softmax", [t], last.Name, "Keras' softmax activation of the classifier", Int("axis", -1));
            if (t != last.Name) t = g.Node("Identity", $"{last.Name}/output", [t], last.Name);
            var s = last.OutputShape;
            object?[] dims = s.Length == 3
                ? [Batch, o.DynamicSize ? null : (object)s[0], o.DynamicSize ? null : (object)s[1], s[2]]
                : [Batch, .. s.Select(v => (object?)v)];
            g.Proto.Output.Add(Value(last.Name, dims));
        }
    }
}
