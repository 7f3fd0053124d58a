using static TorchSharp.torch;

namespace Mhc.Data;

/// <summary>
/// Windows of <c>seq_len + 1</c> tokens cut from a <see cref="TokenCorpus"/>: input = the first seq_len,
/// target = the last seq_len. Training windows are a pure function of (seed, step, micro-batch); validation
/// windows are fixed. Aligned corpora (<see cref="TokenCorpus.DocumentLength"/>) use whole documents.
/// </summary>
sealed class TokenBatches
{
    readonly TokenCorpus corpus;
    readonly int window;
    readonly ulong seed;

    /// <summary>Batches for a model of context <paramref name="sequenceLength"/>.</summary>
    /// <param name="corpus">Tokens.</param>
    /// <param name="sequenceLength">Model context T.</param>
    /// <param name="batchSize">Windows per batch.</param>
    /// <param name="seed">Seed of the training order.</param>
    public TokenBatches(TokenCorpus corpus, int sequenceLength, int batchSize, int seed)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        this.corpus = corpus;
        window = sequenceLength + 1;
        BatchSize = batchSize;
        this.seed = (ulong)seed;
        if (corpus.DocumentLength is { } length && length != window)
            throw new ArgumentException($"corpus documents have {length} tokens but seq_len + 1 = {window}.", nameof(sequenceLength));
        foreach (var (split, tokens) in new[] { ("training", corpus.Train), ("validation", corpus.Validation) })
            if (tokens.Length < window)
                throw new InvalidDataException($"the {split} split has {tokens.Length} tokens; seq_len = {sequenceLength} needs at least {window}.");
    }

    /// <summary>Windows per batch.</summary>
    public int BatchSize { get; }

    /// <summary>Training batch of optimizer step <paramref name="step"/>, micro-batch <paramref name="micro"/>: (input, target), int64 <c>[B, T]</c>.</summary>
    /// <param name="step">Optimizer step (0-based).</param>
    /// <param name="micro">Micro-batch within the step.</param>
    /// <param name="device">Where to put the tensors.</param>
    public (Tensor Input, Tensor Target) Train(long step, int micro, Device? device = null)
    {
        var rng = new SplitMix64(seed, (ulong)step, (ulong)micro);
        var starts = new long[BatchSize];
        for (var b = 0; b < BatchSize; b++) starts[b] = RandomStart(corpus.Train, ref rng);
        return Cut(corpus.Train, starts, device);
    }

    /// <summary>Validation batch <paramref name="index"/> of <paramref name="count"/>: windows spread evenly over the validation split.</summary>
    /// <param name="index">Batch index.</param>
    /// <param name="count">Number of validation batches per evaluation.</param>
    /// <param name="device">Where to put the tensors.</param>
    public (Tensor Input, Tensor Target) Validation(int index, int count, Device? device = null) =>
        Cut(corpus.Validation, ValidationStarts(count).Skip(index * BatchSize).Take(BatchSize).ToArray(), device);

    /// <summary>
    /// The best achievable mean loss on the targets of <paramref name="count"/> validation batches, when the
    /// corpus knows its source distribution; otherwise null.
    /// </summary>
    /// <param name="count">Number of validation batches per evaluation.</param>
    public double? OptimalValidationLoss(int count)
    {
        if (corpus.ValidationSurprisal is not { } surprisal) return null;
        var total = 0.0;
        var starts = ValidationStarts(count);
        foreach (var start in starts)
            for (var t = 1; t < window; t++) total += surprisal[start + t];
        return total / (starts.Count * (window - 1));
    }

    List<long> ValidationStarts(int count)
    {
        var windows = count * BatchSize;
        if (corpus.DocumentLength is { } length)
        {
            var documents = corpus.Validation.Length / length;
            return Enumerable.Range(0, windows).Select(i => (long)(i % documents) * length).ToList();
        }
        var last = corpus.Validation.Length - window;
        return Enumerable.Range(0, windows).Select(i => windows == 1 ? 0 : (long)Math.Round((double)i * last / (windows - 1))).ToList();
    }

    long RandomStart(int[] tokens, ref SplitMix64 rng) => corpus.DocumentLength is { } length
        ? rng.NextInt64(tokens.Length / length) * length
        : rng.NextInt64(tokens.Length - window + 1);

    (Tensor Input, Tensor Target) Cut(int[] tokens, long[] starts, Device? device)
    {
        var data = new long[starts.Length * window];
        for (var b = 0; b < starts.Length; b++)
            for (var t = 0; t < window; t++)
                data[b * window + t] = tokens[starts[b] + t];
        using var all = tensor(data, [starts.Length, window], device: device);
        return (all.narrow(1, 0, window - 1).contiguous(), all.narrow(1, 1, window - 1).contiguous());
    }
}
