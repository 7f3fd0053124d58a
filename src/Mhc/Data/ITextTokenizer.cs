namespace Mhc.Data;

/// <summary>Turns text into token ids and back.</summary>
public interface ITextTokenizer
{
    /// <summary>Name used in configs and on the command line (<c>gpt2</c>, <c>byte</c>).</summary>
    string Name { get; }

    /// <summary>Number of distinct token ids.</summary>
    int VocabSize { get; }

    /// <summary>Token ids of <paramref name="text"/>.</summary>
    /// <param name="text">Any text.</param>
    int[] Encode(string text);

    /// <summary>Text of <paramref name="ids"/>; ids that are not valid text decode to U+FFFD.</summary>
    /// <param name="ids">Token ids.</param>
    string Decode(IEnumerable<int> ids);
}

/// <summary>The tokenizers the tools know by name.</summary>
public static class Tokenizers
{
    /// <summary>Names accepted by <see cref="Create"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["gpt2", "byte"];

    /// <summary>Creates the tokenizer called <paramref name="name"/>.</summary>
    /// <param name="name"><c>gpt2</c> (GPT-2 BPE, 50,257 ids, offline) or <c>byte</c> (UTF-8 bytes, 256 ids).</param>
    public static ITextTokenizer Create(string name) => name switch
    {
        "gpt2" => new Gpt2Tokenizer(),
        "byte" => new ByteTokenizer(),
        _ => throw new ArgumentException($"tokenizer = '{name}' is unknown: allowed {string.Join(", ", Names)}.", nameof(name)),
    };
}
