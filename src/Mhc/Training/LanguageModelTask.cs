using Mhc.Data;
using Mhc.Models;
using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>Next-token prediction with a <see cref="Gpt"/> on a <see cref="TokenCorpus"/>.</summary>
public sealed class LanguageModelTask : SupervisedTask<Gpt>
{
    readonly TokenBatches batches;

    /// <summary>Builds the model and its batches.</summary>
    /// <param name="config">Run configuration; its vocabulary must cover the corpus's tokenizer.</param>
    /// <param name="corpus">Tokens.</param>
    public LanguageModelTask(RunConfig config, TokenCorpus corpus)
        : base(new Gpt(Checked(config, corpus).Model), (long)config.Training.BatchSize * config.Model.SeqLen, reportsAccuracy: false,
            Devices.Resolve(config.Training.Device))
    {
        batches = new TokenBatches(corpus, config.Model.SeqLen, config.Training.BatchSize, config.Training.Seed);
    }

    static RunConfig Checked(RunConfig config, TokenCorpus corpus)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(corpus);
        if (config.Model.VocabSize < corpus.VocabSize)
            throw new ArgumentException($"model.vocab_size = {config.Model.VocabSize} is smaller than the {corpus.TokenizerName} tokenizer's {corpus.VocabSize} ids.", nameof(config));
        return config;
    }

    /// <inheritdoc/>
    protected override (Tensor Input, Tensor Target) TrainBatch(long index, int micro) => batches.Train(index, micro);

    /// <inheritdoc/>
    protected override (Tensor Input, Tensor Target) ValidationBatch(int index, int count) => batches.Validation(index, count);

    /// <inheritdoc/>
    /// <remarks>The head and the loss in one, without the whole logits (<see cref="Gpt.Loss"/>).</remarks>
    protected override Tensor Loss(Tensor input, Tensor target) => Network.Loss(input, target);

    /// <inheritdoc/>
    public override double? OptimalValidationLoss(int batches) => this.batches.OptimalValidationLoss(batches);
}
