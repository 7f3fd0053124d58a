using System.Text;

namespace Mhc.Data;

/// <summary>
/// The built-in corpus: a formal language of variable bindings and look-ups, generated in-process from
/// a seed, whose best achievable cross-entropy is known exactly and which needs depth.
/// A document binds keys to digits or to earlier keys and asks for resolved values:
/// <c>c=7;a=c;?a&gt;7;q=4;b=a;?b&gt;7;...</c>. Answering <c>?b&gt;</c> means following the chain
/// b → a → c → 7, one hop per layer or so; every other position is either forced by the format or a
/// random choice whose probability the generator knows. The generator records −ln p of each emitted
/// character given the document so far, which is the loss of the true distribution.
/// </summary>
static class SyntheticLanguage
{
    /// <summary>Probability that the next item is a query (when a key is bound and an unused key remains).</summary>
    public const double QueryProbability = 0.35;

    /// <summary>Probability that a binding's right-hand side is a fresh digit rather than an earlier key.</summary>
    public const double DigitProbability = 0.3;

    const string Keys = "abcdefghijklmnopqrstuvwxyz";
    const int LongestItem = 5;   // "?k>v;"

    /// <summary>Shortest model context the built-in corpus supports: a document (one token longer) holds at least one whole item.</summary>
    internal const int MinSequenceLength = LongestItem - 1;

    /// <summary>Short description for reports.</summary>
    public const string Name = "built-in binding-chain language";

    /// <summary>Document <paramref name="index"/> of the language for <paramref name="seed"/>: its text and per-character surprisal (nats).</summary>
    /// <param name="seed">Corpus seed.</param>
    /// <param name="index">Document index.</param>
    /// <param name="length">Characters per document (at least 5); the tail after the last whole item is '.' padding.</param>
    public static (string Text, float[] Surprisal) Document(ulong seed, long index, int length)
    {
        if (length < LongestItem)
            throw new ArgumentException($"document length = {length} is out of range: allowed >= {LongestItem}.", nameof(length));
        var rng = new SplitMix64(seed, (ulong)index);
        var text = new StringBuilder(length);
        var surprisal = new List<float>(length);
        var unused = Keys.ToList();
        var bound = new List<char>();
        var value = new Dictionary<char, char>();
        void Emit(char c, double p)
        {
            text.Append(c);
            surprisal.Add((float)-Math.Log(p));
        }

        while (length - text.Length >= LongestItem)
        {
            // First character of an item: '?' (query) or an unused key (binding).
            var pQuery = bound.Count == 0 ? 0 : unused.Count == 0 ? 1 : QueryProbability;
            if (rng.NextDouble() < pQuery)
            {
                Emit('?', pQuery);
                var key = bound[(int)rng.NextInt64(bound.Count)];
                Emit(key, 1.0 / bound.Count);
                Emit('>', 1);
                Emit(value[key], 1);
                Emit(';', 1);
            }
            else
            {
                var key = unused[(int)rng.NextInt64(unused.Count)];
                Emit(key, (1 - pQuery) / unused.Count);
                Emit('=', 1);
                var pDigit = bound.Count == 0 ? 1 : DigitProbability;
                if (rng.NextDouble() < pDigit)
                {
                    var digit = (char)('0' + rng.NextInt64(10));
                    Emit(digit, pDigit / 10);
                    value[key] = digit;
                }
                else
                {
                    var source = bound[(int)rng.NextInt64(bound.Count)];
                    Emit(source, (1 - pDigit) / bound.Count);
                    value[key] = value[source];
                }
                Emit(';', 1);
                unused.Remove(key);
                bound.Add(key);
            }
        }
        while (text.Length < length) Emit('.', 1);
        return (text.ToString(), surprisal.ToArray());
    }

    /// <summary>
    /// A corpus of whole documents of <paramref name="sequenceLength"/> + 1 characters (byte tokens), so
    /// every training window is one document and the optimum is exact.
    /// </summary>
    /// <param name="sequenceLength">Model sequence length.</param>
    /// <param name="trainDocuments">Training documents.</param>
    /// <param name="validationDocuments">Validation documents (a disjoint index range).</param>
    /// <param name="seed">Corpus seed.</param>
    public static TokenCorpus Create(int sequenceLength, int trainDocuments = 20_000, int validationDocuments = 512, ulong seed = 1234)
    {
        var length = sequenceLength + 1;
        int[] Tokens(long first, int count, float[]? surprisal)
        {
            var tokens = new int[count * length];
            Parallel.For(0, count, i =>
            {
                var (text, s) = Document(seed, first + i, length);
                for (var c = 0; c < length; c++) tokens[i * length + c] = text[c];
                if (surprisal is not null) s.CopyTo(surprisal, i * length);
            });
            return tokens;
        }
        var validationSurprisal = new float[validationDocuments * length];
        return new TokenCorpus
        {
            Description = $"{Name} (seed {seed}, {trainDocuments:N0} + {validationDocuments:N0} documents of {length} characters)",
            TokenizerName = "byte",
            VocabSize = 256,
            Train = Tokens(0, trainDocuments, null),
            Validation = Tokens(trainDocuments, validationDocuments, validationSurprisal),
            DocumentLength = length,
            ValidationSurprisal = validationSurprisal,
        };
    }
}
