namespace Mhc.Data;

/// <summary>A tokenised corpus split into training and validation tokens.</summary>
public sealed class TokenCorpus
{
    /// <summary>What the corpus is, for reports ("tinyshakespeare.txt, gpt2, 338,025 tokens").</summary>
    public required string Description { get; init; }

    /// <summary>Name of the tokenizer that produced the ids (see <see cref="Tokenizers"/>).</summary>
    public required string TokenizerName { get; init; }

    /// <summary>Number of distinct ids the tokenizer can produce.</summary>
    public required int VocabSize { get; init; }

    /// <summary>Training tokens.</summary>
    public required int[] Train { get; init; }

    /// <summary>Validation tokens (a fixed, disjoint part of the source).</summary>
    public required int[] Validation { get; init; }

    /// <summary>
    /// When set, the corpus is a sequence of documents of exactly this many tokens and every window
    /// starts at a document boundary (sequence length = document length − 1).
    /// </summary>
    public int? DocumentLength { get; init; }

    /// <summary>
    /// When the source distribution is known: for each validation token, −ln p(token | its document prefix)
    /// under that distribution, so the best achievable loss on exactly the evaluated tokens can be reported.
    /// </summary>
    public float[]? ValidationSurprisal { get; init; }
}
