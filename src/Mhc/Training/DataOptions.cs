using Mhc.Data;

namespace Mhc.Training;

/// <summary>Where the tokens come from (JSON section <c>data</c>).</summary>
public sealed record DataOptions
{
    /// <summary>
    /// Language: a UTF-8 text file or a folder of .txt files; vision: a folder with one sub-folder of
    /// PNG/JPEG images per class. Null = the built-in synthetic language, or the built-in shapes set.
    /// </summary>
    public string? Path { get; init; }

    /// <summary><c>gpt2</c> or <c>byte</c> for text files (null = gpt2); the built-in corpus is always character-level.</summary>
    public string? Tokenizer { get; init; }

    /// <summary>Fraction of the tokens (the end of the corpus) held out for validation.</summary>
    public double ValidationFraction { get; init; } = 0.1;

    /// <summary>Seed of the built-in corpus (independent of the training seed, so runs with different seeds see the same data).</summary>
    public int CorpusSeed { get; init; } = 1234;

    /// <summary>Training documents of the built-in corpus.</summary>
    public int CorpusDocuments { get; init; } = 20_000;

    /// <summary>Training images of the built-in shapes set (validation: the same share as <see cref="ValidationFraction"/>).</summary>
    public int ProceduralImages { get; init; } = 8_000;

    /// <summary>Loads the configured images: the folder at <see cref="Path"/>, or the built-in shapes set.</summary>
    /// <param name="size">Side of the square images.</param>
    public ImageDataset LoadImages(int size)
    {
        if (Path is not null) return ImageFolder.Load(Path, size, ValidationFraction);
        var validation = (int)Math.Ceiling(ProceduralImages * ValidationFraction / (1 - ValidationFraction));
        return Data.ProceduralImages.Create(ProceduralImages, Math.Max(1, validation), (ulong)CorpusSeed, size);
    }

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
    /// <param name="task">The run's task (<see cref="RunConfig.Task"/>).</param>
    public void Validate(string task = RunConfig.Language)
    {
        static void Require(bool ok, string key, string message)
        {
            if (!ok) throw new ArgumentException($"data.{key} {message}", key);
        }
        Require(task != RunConfig.Vision || Tokenizer is null, "tokenizer", $"= '{Tokenizer}' applies to the language task only.");
        Require(Tokenizer is null || Tokenizers.Names.Contains(Tokenizer), "tokenizer", $"= '{Tokenizer}' is unknown: allowed {string.Join(", ", Tokenizers.Names)}.");
        Require(Path is not null || Tokenizer is not "gpt2", "tokenizer", "= 'gpt2' needs data.path: the built-in corpus is character-level (byte).");
        Require(ValidationFraction is > 0 and < 1, "validation_fraction", $"= {ValidationFraction} is out of range: allowed (0, 1).");
        const int most = 100_000_000;
        Require(CorpusDocuments is >= 1 and <= most, "corpus_documents", $"= {CorpusDocuments} is out of range: allowed 1..{most}.");
        Require(ProceduralImages is >= 1 and <= most, "procedural_images", $"= {ProceduralImages} is out of range: allowed 1..{most}.");
    }
}
