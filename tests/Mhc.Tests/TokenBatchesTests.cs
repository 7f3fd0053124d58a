using Mhc.Data;

namespace Mhc.Tests;

public class TokenBatchesTests
{
    static TokenCorpus Counting(int length) => new()
    {
        Description = "counting",
        TokenizerName = "byte",
        VocabSize = 256,
        Train = Enumerable.Range(0, length).Select(i => i % 256).ToArray(),
        Validation = Enumerable.Range(0, length / 4).Select(i => (i * 7) % 256).ToArray(),
    };

    [Fact]
    public void Target_is_input_shifted_by_one_and_batches_depend_only_on_seed_and_step()
    {
        var batches = new TokenBatches(Counting(1000), sequenceLength: 16, batchSize: 4, seed: 5);
        var (input, target) = batches.Train(3, 0);
        var i = Reference.Values(input);
        var t = Reference.Values(target);
        for (var b = 0; b < 4; b++)
            for (var k = 0; k < 15; k++)
                Assert.Equal(i[b * 16 + k + 1], t[b * 16 + k]);
        var again = new TokenBatches(Counting(1000), 16, 4, 5).Train(3, 0);
        Assert.Equal(i, Reference.Values(again.Input));
        Assert.NotEqual(i, Reference.Values(batches.Train(4, 0).Input));
        Assert.NotEqual(i, Reference.Values(batches.Train(3, 1).Input));
        Assert.NotEqual(i, Reference.Values(new TokenBatches(Counting(1000), 16, 4, 6).Train(3, 0).Input));
    }

    [Fact]
    public void Aligned_corpora_use_whole_documents_and_report_their_optimum()
    {
        var corpus = SyntheticLanguage.Create(sequenceLength: 16, trainDocuments: 20, validationDocuments: 8, seed: 9);
        var batches = new TokenBatches(corpus, 16, 4, 0);
        var starts = Reference.Values(batches.Train(0, 0).Input);
        for (var b = 0; b < 4; b++)
        {
            var first = (int)starts[b * 16];
            Assert.True(char.IsAsciiLetterLower((char)first), "every window starts a document with a binding");
        }
        // Optimum over exactly the evaluated targets: validation docs 0..7, positions 1..16.
        var expected = Enumerable.Range(0, 8).SelectMany(d => Enumerable.Range(1, 16).Select(p => (double)corpus.ValidationSurprisal![d * 17 + p])).Average();
        Assert.Equal(expected, batches.OptimalValidationLoss(2)!.Value, 1e-9);
        Assert.Null(new TokenBatches(Counting(100), 16, 4, 0).OptimalValidationLoss(2));
    }

    [Fact]
    public void Too_short_splits_are_rejected()
    {
        Assert.Contains("validation split has 5 tokens", Assert.Throws<InvalidDataException>(() => new TokenBatches(Counting(20), 8, 2, 0)).Message, StringComparison.Ordinal);
    }
}
