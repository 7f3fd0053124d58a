using Mhc.Connections;
using Mhc.Data;
using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>Next-token prediction with a <see cref="Gpt"/> on a <see cref="TokenCorpus"/>.</summary>
public sealed class LanguageModelTask : ITrainingTask
{
    readonly Gpt model;
    readonly TokenBatches batches;

    /// <summary>Builds the model and its batches.</summary>
    /// <param name="config">Run configuration; its vocabulary must cover the corpus's tokenizer.</param>
    /// <param name="corpus">Tokens.</param>
    public LanguageModelTask(RunConfig config, TokenCorpus corpus)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(corpus);
        if (config.Model.VocabSize < corpus.VocabSize)
            throw new ArgumentException($"model.vocab_size = {config.Model.VocabSize} is smaller than the {corpus.TokenizerName} tokenizer's {corpus.VocabSize} ids.", nameof(config));
        model = new Gpt(config.Model);
        batches = new TokenBatches(corpus, config.Model.SeqLen, config.Training.BatchSize, config.Training.Seed);
        TokensPerMicroBatch = (long)config.Training.BatchSize * config.Model.SeqLen;
    }

    /// <summary>The language model.</summary>
    public Gpt Gpt => model;

    /// <inheritdoc/>
    public nn.Module Model => model;

    /// <inheritdoc/>
    public IReadOnlyList<Connection> Connections => model.Connections;

    /// <inheritdoc/>
    public long TokensPerMicroBatch { get; }

    /// <inheritdoc/>
    public Tensor TrainingLoss(long index, int micro)
    {
        var (input, target) = batches.Train(index, micro);
        using (input)
        using (target)
            return model.Loss(input, target);
    }

    /// <inheritdoc/>
    public Evaluation Evaluate(int batches)
    {
        model.eval();
        try
        {
            using var _ = no_grad();
            var total = 0.0;
            for (var i = 0; i < batches; i++)
            {
                using var scope = NewDisposeScope();
                var (input, target) = this.batches.Validation(i, batches);
                total += model.Loss(input, target).ToDouble();
            }
            return new Evaluation(total / batches, null);
        }
        finally
        {
            model.train();
        }
    }

    /// <inheritdoc/>
    public double? OptimalValidationLoss(int batches) => this.batches.OptimalValidationLoss(batches);

    /// <inheritdoc/>
    public IReadOnlyList<Tensor> ProbeStates()
    {
        var (input, target) = batches.Validation(0, 1);
        using (input)
        using (target)
        using (var first = input.narrow(0, 0, 1))
            return model.StreamStates(first);
    }

    /// <inheritdoc/>
    public void Dispose() => model.Dispose();
}
