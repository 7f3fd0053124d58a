using Mhc.Connections;
using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>
/// What the language and vision tasks share: a model on the stream state trained with cross-entropy on
/// deterministic batches, evaluated in eval mode, probed on its first validation input. Subclasses supply
/// the batches.
/// </summary>
/// <typeparam name="TModel">The model.</typeparam>
public abstract class SupervisedTask<TModel> : ITrainingTask where TModel : nn.Module<Tensor, Tensor>, IStreamModel
{
    readonly bool reportsAccuracy;
    readonly Device device;

    /// <summary>Wraps <paramref name="model"/> and moves it to <paramref name="device"/>.</summary>
    /// <param name="model">The model; disposed with the task.</param>
    /// <param name="tokensPerMicroBatch">Sequence positions per micro-batch, for throughput.</param>
    /// <param name="reportsAccuracy">Whether evaluation reports top-1 accuracy (classification).</param>
    /// <param name="device">Where the model and its batches go (<see cref="Devices.Resolve"/>).</param>
    protected SupervisedTask(TModel model, long tokensPerMicroBatch, bool reportsAccuracy, Device device)
    {
        ArgumentNullException.ThrowIfNull(model);
        this.device = device;
        if (device.type != TorchSharp.DeviceType.CPU) model.to(device);
        Network = model;
        TokensPerMicroBatch = tokensPerMicroBatch;
        this.reportsAccuracy = reportsAccuracy;
    }

    /// <summary>The model, typed.</summary>
    public TModel Network { get; }

    /// <inheritdoc/>
    public nn.Module Model => Network;

    /// <inheritdoc/>
    public IReadOnlyList<Connection> Connections => Network.Connections;

    /// <inheritdoc/>
    public long TokensPerMicroBatch { get; }

    /// <summary>Training batch of step <paramref name="index"/>, micro-batch <paramref name="micro"/>: (input, target).</summary>
    /// <param name="index">Optimizer step.</param>
    /// <param name="micro">Micro-batch.</param>
    protected abstract (Tensor Input, Tensor Target) TrainBatch(long index, int micro);

    /// <summary>Validation batch <paramref name="index"/> of <paramref name="count"/>: (input, target).</summary>
    /// <param name="index">Batch index.</param>
    /// <param name="count">Batches per evaluation.</param>
    protected abstract (Tensor Input, Tensor Target) ValidationBatch(int index, int count);

    /// <inheritdoc/>
    public Tensor TrainingLoss(long index, int micro)
    {
        var (input, target) = OnDevice(TrainBatch(index, micro));
        using (input)
        using (target)
            return Loss(input, target);
    }

    /// <inheritdoc/>
    public Evaluation Evaluate(int batches)
    {
        Network.eval();
        try
        {
            using var _ = no_grad();
            var (loss, correct, total) = (0.0, 0L, 0L);
            for (var i = 0; i < batches; i++)
            {
                using var scope = NewDisposeScope();
                var (input, target) = OnDevice(ValidationBatch(i, batches));
                if (!reportsAccuracy)
                {
                    loss += Loss(input, target).ToDouble();
                    continue;
                }
                var logits = Network.call(input);
                loss += CrossEntropy(logits, target).ToDouble();
                correct += logits.argmax(-1).eq(target).sum().ToInt64();
                total += target.numel();
            }
            return new Evaluation(loss / batches, reportsAccuracy ? (double)correct / total : null);
        }
        finally
        {
            Network.train();
        }
    }

    /// <inheritdoc/>
    public virtual double? OptimalValidationLoss(int batches) => null;

    /// <inheritdoc/>
    public IReadOnlyList<Tensor> ProbeStates()
    {
        var (input, target) = OnDevice(ValidationBatch(0, 1));
        using (input)
        using (target)
        using (var first = input.narrow(0, 0, 1))
            return Network.StreamStates(first);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Network.Dispose();
        GC.SuppressFinalize(this);
    }

    // Batches are made on the CPU; on another device they move there (and the CPU copies go).
    (Tensor Input, Tensor Target) OnDevice((Tensor Input, Tensor Target) batch)
    {
        if (device.type == TorchSharp.DeviceType.CPU) return batch;
        using (batch.Input)
        using (batch.Target)
            return (batch.Input.to(device), batch.Target.to(device));
    }

    /// <summary>The mean loss of the model on one batch; by default the cross-entropy of its logits.</summary>
    /// <param name="input">Model input.</param>
    /// <param name="target">Targets.</param>
    protected virtual Tensor Loss(Tensor input, Tensor target)
    {
        using var logits = Network.call(input);
        return CrossEntropy(logits, target);
    }

    // Logits [..., classes] against targets [...]: next-token prediction and classification alike.
    static Tensor CrossEntropy(Tensor logits, Tensor target)
    {
        using var flat = logits.flatten(0, -2);
        using var labels = target.flatten();
        return nn.functional.cross_entropy(flat, labels);
    }
}
