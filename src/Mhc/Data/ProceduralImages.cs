namespace Mhc.Data;

/// <summary>
/// The built-in image-classification set, drawn in-process from a seed so the vision path runs with
/// nothing downloaded. Each 32×32 image holds two textured objects on a noisy background — a disc with
/// horizontal stripes and a box with vertical stripes, each of a random colour and size — plus up to
/// three plain distractor blobs. The class depends on the global arrangement, not on any single patch:
/// which quadrant the disc lies in relative to the box (4) × whether the disc is larger than the box (2)
/// = 8 classes. Telling it needs recognising each object's texture in its own patches, then relating
/// their positions and sizes across the image.
/// </summary>
static class ProceduralImages
{
    /// <summary>Class names, index = label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
    [
        "disc up-right, smaller", "disc up-left, smaller", "disc down-left, smaller", "disc down-right, smaller",
        "disc up-right, larger", "disc up-left, larger", "disc down-left, larger", "disc down-right, larger",
    ];

    /// <summary>Image <paramref name="index"/> for <paramref name="seed"/>: RGB bytes <c>[3, size, size]</c> and its label.</summary>
    /// <param name="seed">Dataset seed.</param>
    /// <param name="index">Image index.</param>
    /// <param name="size">Side in pixels (at least 16).</param>
    public static (byte[] Pixels, int Label) Image(ulong seed, long index, int size = 32)
    {
        if (size < 16) throw new ArgumentException($"image size = {size} is out of range: allowed >= 16.", nameof(size));
        var rng = new SplitMix64(seed, (ulong)index, 0x1A6E);
        var canvas = new float[3, size, size];
        for (var y = 0; y < size; y++)
            for (var x = 0; x < size; x++)
                for (var c = 0; c < 3; c++) canvas[c, y, x] = 0.3f + 0.2f * (float)rng.NextDouble();

        // Sizes differ by at least a third; centres far enough apart (both axes) that the quadrant is unambiguous.
        var scale = size / 32.0;
        var (small, large) = (scale * (3 + rng.NextDouble() * 1.5), scale * (5.5 + rng.NextDouble() * 1.5));
        var discLarger = rng.NextDouble() < 0.5;
        var (discRadius, boxRadius) = discLarger ? (large, small) : (small, large);
        (double X, double Y) disc, box;
        do
        {
            disc = (discRadius + rng.NextDouble() * (size - 2 * discRadius), discRadius + rng.NextDouble() * (size - 2 * discRadius));
            box = (boxRadius + rng.NextDouble() * (size - 2 * boxRadius), boxRadius + rng.NextDouble() * (size - 2 * boxRadius));
        }
        while (Math.Abs(disc.X - box.X) < discRadius + boxRadius - 2 * scale || Math.Abs(disc.Y - box.Y) < 4 * scale);
        var distractors = (int)rng.NextInt64(4);
        for (var t = 0; t < distractors; t++)
            Draw(canvas, ref rng, Shape.Blob, (rng.NextDouble() * size, rng.NextDouble() * size), scale * (1.5 + rng.NextDouble()));
        Draw(canvas, ref rng, Shape.Box, box, boxRadius);
        Draw(canvas, ref rng, Shape.Disc, disc, discRadius);

        var right = disc.X > box.X;
        var up = disc.Y < box.Y;                 // image rows grow downwards
        var quadrant = (up, right) switch { (true, true) => 0, (true, false) => 1, (false, false) => 2, _ => 3 };
        var label = quadrant + (discLarger ? 4 : 0);

        var pixels = new byte[3 * size * size];
        for (var c = 0; c < 3; c++)
            for (var y = 0; y < size; y++)
                for (var x = 0; x < size; x++)
                    pixels[(c * size + y) * size + x] = (byte)Math.Clamp(canvas[c, y, x] * 255, 0, 255);
        return (pixels, label);
    }

    /// <summary>A dataset of <paramref name="count"/> training and <paramref name="validationCount"/> validation images (disjoint indices).</summary>
    /// <param name="count">Training images.</param>
    /// <param name="validationCount">Validation images.</param>
    /// <param name="seed">Dataset seed.</param>
    /// <param name="size">Side in pixels.</param>
    public static ImageDataset Create(int count, int validationCount, ulong seed = 7, int size = 32)
    {
        (byte[] Pixels, int[] Labels) Make(long first, int n)
        {
            var pixels = new byte[n * 3 * size * size];
            var labels = new int[n];
            Parallel.For(0, n, i =>
            {
                var (image, label) = Image(seed, first + i, size);
                image.CopyTo(pixels, (long)i * image.Length);
                labels[i] = label;
            });
            return (pixels, labels);
        }
        var train = Make(0, count);
        var validation = Make(count, validationCount);
        return new ImageDataset
        {
            Description = $"built-in arrangement set (seed {seed}, {count:N0} + {validationCount:N0} images of {size}×{size}, 8 classes)",
            ClassNames = ClassNames,
            Size = size,
            TrainPixels = train.Pixels,
            TrainLabels = train.Labels,
            ValidationPixels = validation.Pixels,
            ValidationLabels = validation.Labels,
            FlipKeepsLabel = false,
        };
    }

    enum Shape { Disc, Box, Blob }

    static void Draw(float[,,] canvas, ref SplitMix64 rng, Shape shape, (double X, double Y) center, double radius)
    {
        var size = canvas.GetLength(1);
        // Bright enough to stand out from the background; the stripes make each object's kind a local feature.
        var color = new[] { 0.25f + 0.75f * (float)rng.NextDouble(), 0.25f + 0.75f * (float)rng.NextDouble(), 0.25f + 0.75f * (float)rng.NextDouble() };
        var phase = (int)rng.NextInt64(2);
        for (var y = 0; y < size; y++)
            for (var x = 0; x < size; x++)
            {
                var (dx, dy) = (x + 0.5 - center.X, y + 0.5 - center.Y);
                var inside = shape == Shape.Box ? Math.Abs(dx) <= radius && Math.Abs(dy) <= radius : dx * dx + dy * dy <= radius * radius;
                if (!inside) continue;
                var shade = shape switch
                {
                    Shape.Disc => (y + phase) % 2 == 0 ? 1f : 0.15f,     // horizontal stripes
                    Shape.Box => (x + phase) % 2 == 0 ? 1f : 0.15f,      // vertical stripes
                    _ => 0.8f,
                };
                for (var c = 0; c < 3; c++) canvas[c, y, x] = color[c] * shade;
            }
    }
}
