using System.Text;

namespace Mhc.Data;

/// <summary>Raw UTF-8 bytes as tokens: 256 ids, no training, every text round-trips.</summary>
sealed class ByteTokenizer : ITextTokenizer
{
    /// <inheritdoc/>
    public string Name => "byte";

    /// <inheritdoc/>
    public int VocabSize => 256;

    /// <inheritdoc/>
    public int[] Encode(string text) => Encoding.UTF8.GetBytes(text).Select(b => (int)b).ToArray();

    /// <inheritdoc/>
    public string Decode(IEnumerable<int> ids) => Encoding.UTF8.GetString(ids.Select(i => (byte)i).ToArray());
}
