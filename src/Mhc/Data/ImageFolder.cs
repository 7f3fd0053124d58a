using SkiaSharp;

namespace Mhc.Data;

/// <summary>
/// Loads an image-folder dataset: one sub-folder per class (its name is the class name) holding PNG or
/// JPEG files. Images are decoded with SkiaSharp, converted to RGB and resized to a square. The split is
/// deterministic: within each class (files in ordinal order) every k-th image is held out for validation.
/// </summary>
static class ImageFolder
{
    static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];

    /// <summary>Loads the dataset under <paramref name="root"/>.</summary>
    /// <param name="root">Folder with one sub-folder per class.</param>
    /// <param name="size">Side of the resized square images.</param>
    /// <param name="validationFraction">Share of each class held out for validation.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">Fewer than two classes, an empty class, or an image that cannot be decoded (named).</exception>
    public static ImageDataset Load(string root, int size, double validationFraction)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (File.Exists(root)) throw new InvalidDataException($"image data '{root}' is a file; expected a folder with one sub-folder per class.");
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"image folder '{root}' does not exist.");
        List<string> classes;
        try
        {
            classes = Directory.GetDirectories(root).Order(StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"image folder '{root}' cannot be read: {e.Message}", e);
        }
        if (classes.Count < 2)
            throw new InvalidDataException($"image folder '{root}' has {classes.Count} class sub-folder(s); expected at least 2 (one per class).");
        var train = new List<(byte[] Pixels, int Label)>();
        var validation = new List<(byte[] Pixels, int Label)>();
        var every = Math.Max(2, (int)Math.Round(1 / validationFraction));
        for (var label = 0; label < classes.Count; label++)
        {
            List<string> files;
            try
            {
                files = Directory.EnumerateFiles(classes[label])
                    .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                    .Order(StringComparer.Ordinal)
                    .ToList();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InvalidDataException($"class folder '{classes[label]}' cannot be read: {e.Message}", e);
            }
            if (files.Count < 2)
                throw new InvalidDataException($"class folder '{classes[label]}' has {files.Count} PNG/JPEG image(s); each class needs at least 2 (training and validation).");
            // Every k-th image is held out; a class with fewer than k images holds out its last one, so each class is validated.
            for (var i = 0; i < files.Count; i++)
            {
                var heldOut = files.Count < every ? i == files.Count - 1 : i % every == every - 1;
                (heldOut ? validation : train).Add((Decode(files[i], size), label));
            }
        }
        return new ImageDataset
        {
            Description = $"{root} ({classes.Count} classes, {train.Count:N0} training / {validation.Count:N0} validation images, resized to {size}×{size})",
            ClassNames = classes.Select(c => Path.GetFileName(c)!).ToList(),
            Size = size,
            TrainPixels = train.SelectMany(t => t.Pixels).ToArray(),
            TrainLabels = train.Select(t => t.Label).ToArray(),
            ValidationPixels = validation.SelectMany(t => t.Pixels).ToArray(),
            ValidationLabels = validation.Select(t => t.Label).ToArray(),
        };
    }

    /// <summary>Largest width or height of an image accepted (its header is read before any pixel memory is taken).</summary>
    const int MaxSide = 16_384;

    /// <summary>Decodes a whole image, refusing one whose header claims an absurd size and one whose data ends early.</summary>
    static SKBitmap DecodeWhole(string file)
    {
        using var codec = SKCodec.Create(file)
            ?? throw new InvalidDataException($"image file '{file}' cannot be decoded (corrupt or not a PNG/JPEG image).");
        var info = codec.Info;
        if (info.Width < 1 || info.Height < 1 || info.Width > MaxSide || info.Height > MaxSide)
            throw new InvalidDataException($"image file '{file}' is {info.Width}×{info.Height} pixels: allowed 1..{MaxSide} on each side.");
        var bitmap = new SKBitmap(new SKImageInfo(info.Width, info.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        var result = codec.GetPixels(bitmap.Info, bitmap.GetPixels());
        if (result != SKCodecResult.Success)
        {
            bitmap.Dispose();
            throw new InvalidDataException(result == SKCodecResult.IncompleteInput
                ? $"image file '{file}' is incomplete (its data ends before the last row)."
                : $"image file '{file}' cannot be decoded ({result}).");
        }
        return bitmap;
    }

    /// <summary>Decodes one image to RGB bytes <c>[3, size, size]</c>.</summary>
    /// <param name="file">A PNG or JPEG file.</param>
    /// <param name="size">Side of the resized square.</param>
    public static byte[] Decode(string file, int size)
    {
        using var original = DecodeWhole(file);
        using var resized = original.Resize(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Premul), new SKSamplingOptions(SKFilterMode.Linear))
            ?? throw new InvalidDataException($"image file '{file}' cannot be resized to {size}×{size}.");
        var pixels = new byte[3 * size * size];
        for (var y = 0; y < size; y++)
            for (var x = 0; x < size; x++)
            {
                var color = resized.GetPixel(x, y);
                pixels[(0 * size + y) * size + x] = color.Red;
                pixels[(1 * size + y) * size + x] = color.Green;
                pixels[(2 * size + y) * size + x] = color.Blue;
            }
        return pixels;
    }
}
