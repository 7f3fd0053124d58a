using Mhc.Cli;
using Mhc.Connections;
using Mhc.Data;
using Mhc.Models;
using Mhc.Training;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

public class VisionTests
{
    [Fact]
    public void Patch_embedding_is_the_linear_map_of_each_flattened_patch()
    {
        manual_seed(80);
        const int c = 3, p = 4, d = 5, size = 8;
        using var embed = new PatchEmbedding(c, p, d);
        embed.to(ScalarType.Float64);
        using var images = randn([2, c, size, size], ScalarType.Float64);
        using var output = embed.call(images);
        Assert.Equal([2L, size / p * (size / p), d], output.shape);
        var w = Reference.Values(Reference.Parameter(embed, "proj.weight"));   // [d, c, p, p]
        var bias = Reference.Values(Reference.Parameter(embed, "proj.bias"));
        var x = Reference.Values(images);
        var o = Reference.Values(output);
        for (var b = 0; b < 2; b++)
            for (var py = 0; py < size / p; py++)
                for (var px = 0; px < size / p; px++)
                    for (var k = 0; k < d; k++)
                    {
                        var expected = bias[k];
                        for (var ch = 0; ch < c; ch++)
                            for (var y = 0; y < p; y++)
                                for (var xx = 0; xx < p; xx++)
                                    expected += w[((k * c + ch) * p + y) * p + xx] * x[((b * c + ch) * size + py * p + y) * size + px * p + xx];
                        var patch = py * (size / p) + px;     // row-major patch order
                        Assert.Equal(expected, o[(b * 4 + patch) * d + k], 1e-10);
                    }
    }

    [Theory]
    [InlineData("cls")]
    [InlineData("mean")]
    public void Vit_shapes_and_stream_states(string pooling)
    {
        manual_seed(81);
        using var vit = new Vit(new VitConfig { ImageSize = 16, PatchSize = 4, Classes = 5, DModel = 16, Layers = 2, Heads = 2, Pooling = pooling });
        using var images = randn(3, 3, 16, 16);
        using var logits = vit.call(images);
        Assert.Equal([3L, 5], logits.shape);
        var states = vit.StreamStates(images);
        Assert.Equal(5, states.Count);
        Assert.All(states, s => Assert.Equal([3L, pooling == "cls" ? 17 : 16, 4, 16], s.shape));
        using var wrong = randn(3, 3, 15, 16);
        Assert.Contains("[B, 3, 16, 16]", Assert.Throws<ArgumentException>(() => vit.call(wrong)).Message, StringComparison.Ordinal);
        Assert.Contains("vit.patch_size = 5", Assert.Throws<ArgumentException>(() => new VitConfig { PatchSize = 5 }.Validate()).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(ConnectionKind.Residual)]
    [InlineData(ConnectionKind.HyperStatic)]
    [InlineData(ConnectionKind.HyperDynamic)]
    [InlineData(ConnectionKind.Manifold)]
    [Trait("Category", "Slow")]
    public void Every_kind_memorises_a_tiny_batch_of_images(ConnectionKind kind)
    {
        using var run = TestPaths.Temp();
        var images = ProceduralImages.Create(8, 1, seed: 3, size: 16);
        // Validate on the training images themselves: memorising them must drive the loss down.
        var tiny = new ImageDataset
        {
            Description = "tiny", ClassNames = images.ClassNames, Size = 16, TrainPixels = images.TrainPixels, TrainLabels = images.TrainLabels,
            ValidationPixels = images.TrainPixels, ValidationLabels = images.TrainLabels, FlipKeepsLabel = false,
        };
        var config = new RunConfig
        {
            Task = RunConfig.Vision,
            Vit = new VitConfig { ImageSize = 16, PatchSize = 4, Classes = 8, DModel = 32, Layers = 2, Heads = 2, Connection = RunConfigDefaults.For(kind) },
            Training = new TrainingOptions { Steps = 300, BatchSize = 8, LearningRate = 3e-3, WarmupSteps = 10, WeightDecay = 0, EvalEvery = 300, EvalBatches = 1, CheckpointEvery = 1000, Threads = 2, Seed = 2 },
        };
        var summary = new Trainer(config, run.Path, () => new VisionTask(config, tiny)).Run(resume: false);
        Assert.True(summary.FinalValLoss < 0.15, $"{kind}: validation loss {summary.FinalValLoss}");
        Assert.Equal(1.0, summary.FinalValAccuracy);
        Assert.Contains(MetricsLog.Read(Path.Combine(run.Path, MetricsLog.FileName)), r => r.ValAccuracy is not null);
    }

    static void WriteImage(string path, SKColor color, SKEncodedImageFormat format)
    {
        using var bitmap = new SKBitmap(20, 12);
        bitmap.Erase(color);
        using var data = bitmap.Encode(format, 95);
        File.WriteAllBytes(path, data.ToArray());
    }

    [Fact]
    public void Image_folder_decodes_png_and_jpeg_by_class_with_a_deterministic_split()
    {
        using var temp = TestPaths.Temp();
        foreach (var (name, color) in new[] { ("blue", new SKColor(0, 0, 255)), ("red", new SKColor(255, 0, 0)) })
        {
            Directory.CreateDirectory(temp.File(name));
            for (var i = 0; i < 5; i++)
                WriteImage(Path.Combine(temp.Path, name, $"{i}.{(i % 2 == 0 ? "png" : "jpg")}"), color, i % 2 == 0 ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg);
            File.WriteAllText(Path.Combine(temp.Path, name, "notes.txt"), "ignored");
        }
        var data = ImageFolder.Load(temp.Path, 8, 0.2);
        Assert.Equal(["blue", "red"], data.ClassNames);
        Assert.Equal([0, 0, 0, 0, 1, 1, 1, 1], data.TrainLabels);
        Assert.Equal([0, 1], data.ValidationLabels);          // the 5th file of each class
        // Solid colours survive decoding and resizing (JPEG within its rounding).
        var first = data.ValidationPixels;                    // blue: R≈0, G≈0, B≈255
        Assert.InRange(first[0], 0, 8);
        Assert.InRange(first[64], 0, 8);
        Assert.InRange(first[128], 247, 255);
    }

    [Fact]
    public void A_corrupt_image_is_named_in_the_error()
    {
        using var temp = TestPaths.Temp();
        foreach (var name in new[] { "a", "b" })
        {
            Directory.CreateDirectory(temp.File(name));
            WriteImage(Path.Combine(temp.Path, name, "0.png"), SKColors.Gray, SKEncodedImageFormat.Png);
            WriteImage(Path.Combine(temp.Path, name, "1.png"), SKColors.Gray, SKEncodedImageFormat.Png);
        }
        var corrupt = Path.Combine(temp.Path, "b", "2.png");
        File.WriteAllBytes(corrupt, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3, 4, 5]);
        var error = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(temp.Path, 8, 0.5));
        Assert.Contains($"image file '{corrupt}' cannot be decoded", error.Message, StringComparison.Ordinal);

        var (code, err) = InProcessCli.Run(["train", "--task", "vision", "--data", temp.Path, "--steps", "1", "--out", temp.File("run")]);
        Assert.Equal(ExitCodes.DataError, code);
        Assert.Contains(corrupt, err, StringComparison.Ordinal);
        Assert.Contains("has 0 class sub-folder(s)", Assert.Throws<InvalidDataException>(() => ImageFolder.Load(Path.Combine(temp.Path, "a"), 8, 0.5)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Procedural_images_are_deterministic_and_cover_every_class()
    {
        Assert.Equal(ProceduralImages.Image(5, 17).Pixels, ProceduralImages.Image(5, 17).Pixels);
        Assert.NotEqual(ProceduralImages.Image(5, 17).Pixels, ProceduralImages.Image(5, 18).Pixels);
        var labels = Enumerable.Range(0, 400).Select(i => ProceduralImages.Image(5, i).Label).ToList();
        Assert.Equal(8, labels.Distinct().Count());
        Assert.All(labels.GroupBy(l => l), g => Assert.InRange(g.Count(), 20, 90));
    }
}
