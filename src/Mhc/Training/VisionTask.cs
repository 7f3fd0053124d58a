using Mhc.Data;
using Mhc.Models;
using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>Image classification with a <see cref="Vit"/> on an <see cref="ImageDataset"/>.</summary>
public sealed class VisionTask : SupervisedTask<Vit>
{
    readonly ImageBatches batches;

    /// <summary>Builds the model and its batches.</summary>
    /// <param name="config">Run configuration (task vision); its class count must cover the dataset's.</param>
    /// <param name="data">Images.</param>
    public VisionTask(RunConfig config, ImageDataset data)
        : base(new Vit(Checked(config, data).Vit), (long)config.Training.BatchSize * config.Vit.Tokens, reportsAccuracy: true,
            Devices.Resolve(config.Training.Device))
    {
        batches = new ImageBatches(data, config.Training.BatchSize, config.Training.Seed);
    }

    static RunConfig Checked(RunConfig config, ImageDataset data)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(data);
        if (config.Vit.Classes < data.ClassNames.Count)
            throw new ArgumentException($"vit.classes = {config.Vit.Classes} is smaller than the dataset's {data.ClassNames.Count} classes.", nameof(config));
        if (config.Vit.ImageSize != data.Size || config.Vit.Channels != data.Channels)
            throw new ArgumentException($"vit.image_size / channels = {config.Vit.ImageSize} / {config.Vit.Channels} do not match the dataset's {data.Size} / {data.Channels}.", nameof(config));
        return config;
    }

    /// <inheritdoc/>
    protected override (Tensor Input, Tensor Target) TrainBatch(long index, int micro) => batches.Train(index, micro);

    /// <inheritdoc/>
    protected override (Tensor Input, Tensor Target) ValidationBatch(int index, int count) => batches.Validation(index);
}
