using static TorchSharp.torch;

namespace Mhc.Data;

/// <summary>
/// Batches of an <see cref="ImageDataset"/> as float tensors in [−1, 1]. Training batches are a pure
/// function of (seed, step, micro-batch) and augmented: a random crop after 2-pixel zero padding, and a
/// horizontal flip where it keeps the label. Validation batches are fixed and not augmented.
/// </summary>
sealed class ImageBatches
{
    const int Pad = 2;
    readonly ImageDataset data;
    readonly ulong seed;

    /// <summary>Batches of <paramref name="batchSize"/> images.</summary>
    /// <param name="data">Images.</param>
    /// <param name="batchSize">Images per batch.</param>
    /// <param name="seed">Seed of sampling and augmentation.</param>
    public ImageBatches(ImageDataset data, int batchSize, int seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        this.data = data;
        BatchSize = batchSize;
        this.seed = (ulong)seed;
    }

    /// <summary>Images per batch.</summary>
    public int BatchSize { get; }

    /// <summary>Augmented training batch: images <c>[B, C, S, S]</c> float32, labels <c>[B]</c> int64.</summary>
    /// <param name="step">Optimizer step.</param>
    /// <param name="micro">Micro-batch.</param>
    public (Tensor Images, Tensor Labels) Train(long step, int micro)
    {
        var rng = new SplitMix64(seed, (ulong)step, (ulong)micro, 0x1A);
        var (s, c, n) = (data.Size, data.Channels, data.TrainLabels.Length);
        var images = new float[BatchSize * data.ImageBytes];
        var labels = new long[BatchSize];
        for (var b = 0; b < BatchSize; b++)
        {
            var index = (int)rng.NextInt64(n);
            labels[b] = data.TrainLabels[index];
            var (dx, dy) = ((int)rng.NextInt64(2 * Pad + 1) - Pad, (int)rng.NextInt64(2 * Pad + 1) - Pad);
            var flip = data.FlipKeepsLabel && rng.NextDouble() < 0.5;
            var source = index * data.ImageBytes;
            for (var ch = 0; ch < c; ch++)
                for (var y = 0; y < s; y++)
                    for (var x = 0; x < s; x++)
                    {
                        var (sx, sy) = (flip ? s - 1 - (x + dx) : x + dx, y + dy);
                        var value = sx >= 0 && sx < s && sy >= 0 && sy < s ? data.TrainPixels[source + (ch * s + sy) * s + sx] : 127.5f;
                        images[b * data.ImageBytes + (ch * s + y) * s + x] = value / 127.5f - 1;
                    }
        }
        return (tensor(images, [BatchSize, c, s, s]), tensor(labels, [BatchSize]));
    }

    /// <summary>Validation batch <paramref name="index"/>: fixed images, no augmentation (wraps around a small set).</summary>
    /// <param name="index">Batch index.</param>
    public (Tensor Images, Tensor Labels) Validation(int index)
    {
        var (s, c, n) = (data.Size, data.Channels, data.ValidationLabels.Length);
        var images = new float[BatchSize * data.ImageBytes];
        var labels = new long[BatchSize];
        for (var b = 0; b < BatchSize; b++)
        {
            var i = (index * BatchSize + b) % n;
            labels[b] = data.ValidationLabels[i];
            for (var k = 0; k < data.ImageBytes; k++) images[b * data.ImageBytes + k] = data.ValidationPixels[i * data.ImageBytes + k] / 127.5f - 1;
        }
        return (tensor(images, [BatchSize, c, s, s]), tensor(labels, [BatchSize]));
    }
}
