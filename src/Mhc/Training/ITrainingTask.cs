using Mhc.Connections;
using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>
/// What the <see cref="Trainer"/> trains: a model, its deterministic batches and its evaluation. The
/// language model and the vision model implement it, so both share the trainer, metrics and reports.
/// </summary>
public interface ITrainingTask : IDisposable
{
    /// <summary>The model being trained.</summary>
    nn.Module Model { get; }

    /// <summary>Every sub-layer's connection, in order.</summary>
    IReadOnlyList<Connection> Connections { get; }

    /// <summary>Sequence positions processed per micro-batch (B·T), for throughput.</summary>
    long TokensPerMicroBatch { get; }

    /// <summary>Loss of micro-batch <paramref name="micro"/> of optimizer step <paramref name="index"/> (a pure function of the two and the seed).</summary>
    /// <param name="index">Optimizer step, 0-based.</param>
    /// <param name="micro">Micro-batch index.</param>
    Tensor TrainingLoss(long index, int micro);

    /// <summary>Validation loss (and accuracy for classifiers) over <paramref name="batches"/> fixed batches, in eval mode.</summary>
    /// <param name="batches">Validation batches.</param>
    Evaluation Evaluate(int batches);

    /// <summary>Best achievable validation loss on those batches when the data's distribution is known, else null.</summary>
    /// <param name="batches">Validation batches.</param>
    double? OptimalValidationLoss(int batches);

    /// <summary>The stream state entering every sub-layer, then the final state, on a fixed probe input (for diagnostics).</summary>
    IReadOnlyList<Tensor> ProbeStates();
}

/// <summary>Result of an evaluation.</summary>
/// <param name="Loss">Mean validation loss.</param>
/// <param name="Accuracy">Top-1 accuracy for classifiers, else null.</param>
public sealed record Evaluation(double Loss, double? Accuracy);
