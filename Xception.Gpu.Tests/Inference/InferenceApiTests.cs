using StbImageWriteSharp;
using Xception.Gpu.Imaging;
using Xception.Gpu.Inference;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Tests.IO;
using Xception.Gpu.Tests.Keras;
using Xunit;

namespace Xception.Gpu.Tests.Inference;

public class InferenceApiTests
{
    /// <summary>A smooth colour gradient with a bright square: a small RGB PNG.</summary>
    internal static string WritePng(TempDir dir, string name, int w = 90, int h = 80, int seed = 0)
    {
        var px = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = 3 * (y * w + x);
                px[i] = (byte)(x * 255 / w); px[i + 1] = (byte)(y * 255 / h); px[i + 2] = (byte)((x + y + seed * 40) % 256);
                if (x > w / 3 && x < w / 2 && y > h / 3 && y < h / 2) px[i] = px[i + 1] = px[i + 2] = 250;
            }
        using var ms = new MemoryStream();
        new ImageWriter().WritePng(px, w, h, ColorComponents.RedGreenBlue, ms);
        return dir.Write(name, ms.ToArray());
    }

    [Fact]
    public void TheReadmeExampleRuns()
    {
        var weights = KerasReference.Weights;
        using var dir = new TempDir();
        var image = WritePng(dir, "cat.png");
        var lines = new List<string>();

        // The README's example, with this test's files (and 71 x 71 to keep it quick on a CPU).
        using var model = XceptionModel.Load(weights, device: "cpu", imageSize: 71);
        foreach (var p in model.Classify(image, top: 5))
            lines.Add($"{p.Label,-40} {p.Probability:P1}");

        Assert.Equal(5, lines.Count);
        Assert.All(lines, l => Assert.StartsWith("class ", l)); // 10-class weights carry no label names
        var top = model.Classify(image, top: 10);
        Assert.Equal(Enumerable.Range(0, 10).ToHashSet(), top.Select(p => p.Index).ToHashSet());
        Assert.InRange(top.Sum(p => p.Probability), 1 - 1e-5, 1 + 1e-5);
        Assert.True(top.Zip(top.Skip(1)).All(t => t.First.Probability >= t.Second.Probability));
    }

    [Fact]
    public void BatchedClassificationEqualsOneByOneAndTheRawPath()
    {
        using var dir = new TempDir();
        var images = Enumerable.Range(0, 5).Select(i => WritePng(dir, $"i{i}.png", 60 + 7 * i, 75 - 3 * i, i)).ToList();
        using var model = XceptionModel.Load(KerasReference.Weights, device: "cpu", imageSize: 71);
        var batched = model.Classify(images, top: 3, batch: 2);
        for (int i = 0; i < images.Count; i++)
        {
            var single = model.Classify(images[i], top: 3);
            Assert.Equal(single.Select(p => p.Index), batched[i].Select(p => p.Index));
            Assert.Equal(single[0].Probability, batched[i][0].Probability, 1e-6f);
        }
        // The same image through the raw-tensor API.
        var x = Preprocess.LoadKerasTf(images[0], 71, ResizeMode.Bilinear);
        var probs = model.Probabilities(x, 1);
        Assert.Equal(batched[0][0].Probability, probs.Max(), 1e-6f);
        var logits = model.Logits(x, 1);
        Assert.Equal(Array.IndexOf(logits, logits.Max()), batched[0][0].Index);
        Assert.Throws<ShapeException>(() => model.Logits(x.AsSpan(1).ToArray(), 1));
    }

    [Fact]
    public void ThousandClassWeightsGetImageNetLabels()
    {
        using var dir = new TempDir();
        var path = dir["imagenet.h5"];
        using (var m = XceptionBuilder.Build(new XceptionConfig { ImageSize = 71 }))
        {
            m.Initialize(3);
            KerasH5.Save(m, path);
        }
        using var model = XceptionModel.Load(path, device: "cpu", imageSize: 71);
        Assert.Equal(1000, model.Config.Classes);
        var p = model.Classify(WritePng(dir, "x.png"), top: 3);
        Assert.All(p, x => Assert.Equal(ImageNetLabels.All[x.Index], x.Label));
    }

    [Fact]
    public void ABrokenImageIsOneClearError()
    {
        using var dir = new TempDir();
        var fake = dir.Write("cat.jpg", "not a picture"u8.ToArray());
        using var model = XceptionModel.Load(KerasReference.Weights, device: "cpu", imageSize: 71);
        var e = Assert.Throws<ImageException>(() => model.Classify(fake));
        Assert.Contains(fake, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
