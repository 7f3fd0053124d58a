using Mhc.Data;

namespace Mhc.Training;

/// <summary>Where the tokens come from (JSON section <c>data</c>).</summary>
public sealed record DataOptions
{
    /// <summary>A UTF-8 text file or a folder of .txt files; null = the built-in synthetic language.</summary>
    public string? Path { get; init; }

    /// <summary><c>gpt2</c> or <c>byte</c> for text files (null = gpt2); the built-in corpus is always character-level.</summary>
    public string? Tokenizer { get; init; }

    /// <summary>Fraction of the tokens (the end of the corpus) held out for validation.</summary>
    public double ValidationFraction { get; init; } = 0.1;

    /// <summary>Seed of the built-in corpus (independent of the training seed, so runs with different seeds see the same data).</summary>
    public int CorpusSeed { get; init; } = 1234;

    /// <summary>Training documents of the built-in corpus.</summary>
    public int CorpusDocuments { get; init; } = 20_000;

    /// <summary>Loads the configured corpus: the text at <see cref="Path"/>, or the built-in language.</summary>
    /// <param name="sequenceLength">Model context; the built-in documents are one token longer.</param>
    /// <param name="cacheDirectory">Where tokenised text is cached (null = no cache).</param>
    public TokenCorpus Load(int sequenceLength, string? cacheDirectory)
    {
        if (Path is null)
        {
            var validation = (int)Math.Ceiling(CorpusDocuments * ValidationFraction / (1 - ValidationFraction));
            return SyntheticLanguage.Create(sequenceLength, CorpusDocuments, Math.Max(1, validation), (ulong)CorpusSeed);
        }
        return TextCorpus.Load(Path, Tokenizers.Create(Tokenizer ?? "gpt2"), ValidationFraction, sequenceLength, cacheDirectory);
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid value and its allowed range.</summary>
    public void Validate()
    {
        if (Tokenizer is not null && !Tokenizers.Names.Contains(Tokenizer))
            throw new ArgumentException($"data.tokenizer = '{Tokenizer}' is unknown: allowed {string.Join(", ", Tokenizers.Names)}.", nameof(Tokenizer));
        if (Path is null && Tokenizer is "gpt2")
            throw new ArgumentException("data.tokenizer = 'gpt2' needs data.path: the built-in corpus is character-level (byte).", nameof(Tokenizer));
        if (ValidationFraction is <= 0 or >= 1)
            throw new ArgumentException($"data.validation_fraction = {ValidationFraction} is out of range: allowed (0, 1).", nameof(ValidationFraction));
        if (CorpusDocuments < 1)
            throw new ArgumentException($"data.corpus_documents = {CorpusDocuments} is out of range: allowed >= 1.", nameof(CorpusDocuments));
    }
}
