namespace Mhc.Data;

/// <summary>Images held in memory as bytes <c>[N, C, S, S]</c> with their classes, split into training and validation.</summary>
public sealed class ImageDataset
{
    /// <summary>What the dataset is, for reports.</summary>
    public required string Description { get; init; }

    /// <summary>Class names, index = label.</summary>
    public required IReadOnlyList<string> ClassNames { get; init; }

    /// <summary>Channels per image (3 = RGB).</summary>
    public int Channels { get; init; } = 3;

    /// <summary>Side of the square images in pixels.</summary>
    public required int Size { get; init; }

    /// <summary>Training pixels, image after image, channel-major.</summary>
    public required byte[] TrainPixels { get; init; }

    /// <summary>Training labels.</summary>
    public required int[] TrainLabels { get; init; }

    /// <summary>Validation pixels.</summary>
    public required byte[] ValidationPixels { get; init; }

    /// <summary>Validation labels.</summary>
    public required int[] ValidationLabels { get; init; }

    /// <summary>
    /// Whether a horizontal flip keeps the label (true for photos; false for the procedural set, whose
    /// classes depend on left and right).
    /// </summary>
    public bool FlipKeepsLabel { get; init; } = true;

    /// <summary>Bytes per image.</summary>
    public int ImageBytes => Channels * Size * Size;
}
