using Mhc.Connections;
using Mhc.Data;
using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>Image classification with a <see cref="Vit"/> on an <see cref="ImageDataset"/>.</summary>
public sealed class VisionTask : ITrainingTask
{
    readonly Vit model;
    readonly ImageBatches batches;

    /// <summary>Builds the model and its batches.</summary>
    /// <param name="config">Run configuration (task vision); its class count must cover the dataset's.</param>
    /// <param name="data">Images.</param>
    public VisionTask(RunConfig config, ImageDataset data)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(data);
        if (config.Vit.Classes < data.ClassNames.Count)
            throw new ArgumentException($"vit.classes = {config.Vit.Classes} is smaller than the dataset's {data.ClassNames.Count} classes.", nameof(config));
        if (config.Vit.ImageSize != data.Size || config.Vit.Channels != data.Channels)
            throw new ArgumentException($"vit.image_size / channels = {config.Vit.ImageSize} / {config.Vit.Channels} do not match the dataset's {data.Size} / {data.Channels}.", nameof(config));
        model = new Vit(config.Vit);
        batches = new ImageBatches(data, config.Training.BatchSize, config.Training.Seed);
        TokensPerMicroBatch = (long)config.Training.BatchSize * config.Vit.Tokens;
    }

    /// <summary>The classifier.</summary>
    public Vit Vit => model;

    /// <inheritdoc/>
    public nn.Module Model => model;

    /// <inheritdoc/>
    public IReadOnlyList<Connection> Connections => model.Connections;

    /// <inheritdoc/>
    public long TokensPerMicroBatch { get; }

    /// <inheritdoc/>
    public Tensor TrainingLoss(long index, int micro)
    {
        var (images, labels) = batches.Train(index, micro);
        using (images)
        using (labels)
            return model.Loss(images, labels);
    }

    /// <inheritdoc/>
    public Evaluation Evaluate(int batches)
    {
        model.eval();
        try
        {
            using var _ = no_grad();
            var (loss, correct, total) = (0.0, 0L, 0L);
            for (var i = 0; i < batches; i++)
            {
                using var scope = NewDisposeScope();
                var (images, labels) = this.batches.Validation(i);
                var logits = model.call(images);
                loss += nn.functional.cross_entropy(logits, labels).ToDouble();
                correct += logits.argmax(-1).eq(labels).sum().ToInt64();
                total += labels.size(0);
            }
            return new Evaluation(loss / batches, (double)correct / total);
        }
        finally
        {
            model.train();
        }
    }

    /// <inheritdoc/>
    public double? OptimalValidationLoss(int batches) => null;

    /// <inheritdoc/>
    public IReadOnlyList<Tensor> ProbeStates()
    {
        var (images, labels) = batches.Validation(0);
        using (images)
        using (labels)
        using (var first = images.narrow(0, 0, 1))
            return model.StreamStates(first);
    }

    /// <inheritdoc/>
    public void Dispose() => model.Dispose();
}
