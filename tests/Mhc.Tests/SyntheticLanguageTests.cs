using Mhc.Data;

namespace Mhc.Tests;

/// <summary>
/// The built-in language, checked by re-deriving everything from the text alone: answers follow the
/// bindings, and the recorded surprisal equals −ln p recomputed from the generation rules.
/// </summary>
public class SyntheticLanguageTests
{
    [Fact]
    public void Answers_resolve_binding_chains_and_surprisal_matches_the_rules()
    {
        for (var index = 0; index < 200; index++)
        {
            var (text, surprisal) = SyntheticLanguage.Document(7, index, 129);
            Assert.Equal(129, text.Length);
            Assert.Equal(129, surprisal.Length);
            var expected = Recompute(text);
            for (var i = 0; i < text.Length; i++)
                Assert.Equal(expected[i], surprisal[i], 1e-5);
        }
    }

    [Fact]
    public void Documents_are_deterministic_and_differ_by_index_and_seed()
    {
        Assert.Equal(SyntheticLanguage.Document(1, 5, 64).Text, SyntheticLanguage.Document(1, 5, 64).Text);
        Assert.NotEqual(SyntheticLanguage.Document(1, 5, 64).Text, SyntheticLanguage.Document(1, 6, 64).Text);
        Assert.NotEqual(SyntheticLanguage.Document(1, 5, 64).Text, SyntheticLanguage.Document(2, 5, 64).Text);
    }

    [Fact]
    public void Corpus_has_aligned_documents_and_a_known_optimum()
    {
        var corpus = SyntheticLanguage.Create(sequenceLength: 32, trainDocuments: 50, validationDocuments: 10, seed: 3);
        Assert.Equal(33, corpus.DocumentLength);
        Assert.Equal(50 * 33, corpus.Train.Length);
        Assert.Equal(10 * 33, corpus.Validation.Length);
        Assert.Equal(SyntheticLanguage.Document(3, 50, 33).Text, new string(corpus.Validation.Take(33).Select(t => (char)t).ToArray()));
        var optimum = corpus.ValidationSurprisal!.Average();
        Assert.InRange(optimum, 0.3, Math.Log(36));
    }

    [Fact]
    public void Queries_need_several_hops()
    {
        // The language must need depth: many answers sit at the end of chains of two or more bindings.
        var hops = new List<int>();
        for (var index = 0; index < 300; index++)
        {
            var text = SyntheticLanguage.Document(11, index, 257).Text;
            var source = new Dictionary<char, char>();
            for (var i = 0; i + 3 < text.Length; i++)
            {
                if (char.IsAsciiLetterLower(text[i]) && text[i + 1] == '=') source[text[i]] = text[i + 2];
                if (text[i] == '?')
                {
                    var (key, depth) = (text[i + 1], 1);
                    while (char.IsAsciiLetterLower(source[key])) (key, depth) = (source[key], depth + 1);
                    hops.Add(depth);
                }
            }
        }
        Assert.True(hops.Count(h => h >= 3) > hops.Count / 4, $"hop histogram: {string.Join(",", hops.GroupBy(h => h).OrderBy(g => g.Key).Select(g => $"{g.Key}:{g.Count()}"))}");
    }

    /// <summary>−ln p of every character, from the text and the published rules only.</summary>
    static double[] Recompute(string text)
    {
        var result = new double[text.Length];
        var unused = 26;
        var bound = new List<char>();
        var value = new Dictionary<char, char>();
        var i = 0;
        while (i < text.Length && text[i] != '.')
        {
            var pQuery = bound.Count == 0 ? 0 : unused == 0 ? 1 : SyntheticLanguage.QueryProbability;
            if (text[i] == '?')
            {
                result[i] = -Math.Log(pQuery);
                result[i + 1] = Math.Log(bound.Count);
                Assert.Equal('>', text[i + 2]);
                Assert.Equal(value[text[i + 1]], text[i + 3]);     // the answer is the resolved value
                Assert.Equal(';', text[i + 4]);
                i += 5;
            }
            else
            {
                var key = text[i];
                Assert.True(char.IsAsciiLetterLower(key) && !value.ContainsKey(key));
                result[i] = -Math.Log((1 - pQuery) / unused);
                Assert.Equal('=', text[i + 1]);
                var rhs = text[i + 2];
                var pDigit = bound.Count == 0 ? 1 : SyntheticLanguage.DigitProbability;
                result[i + 2] = char.IsAsciiDigit(rhs) ? -Math.Log(pDigit / 10) : -Math.Log((1 - pDigit) / bound.Count);
                value[key] = char.IsAsciiDigit(rhs) ? rhs : value[rhs];
                Assert.Equal(';', text[i + 3]);
                bound.Add(key);
                unused--;
                i += 4;
            }
        }
        Assert.True(text.Length - i < 5, "padding starts only when no item fits");
        for (; i < text.Length; i++) Assert.Equal('.', text[i]);
        return result;
    }
}
