using Mhc.Connections;
using Mhc.Models;
using Mhc.Training;
using static TorchSharp.torch;

namespace Mhc.Tests;

public class WholeTextEvaluationTests
{
    [Fact]
    public void Every_token_but_the_first_is_predicted_once_in_consecutive_windows()
    {
        manual_seed(8);
        using var model = new Gpt(new GptConfig { VocabSize = 16, DModel = 16, Layers = 1, Heads = 2, SeqLen = 8, Connection = new ConnectionOptions { Kind = ConnectionKind.Manifold } });
        var generator = new Random(3);
        var tokens = Enumerable.Range(0, 53).Select(_ => generator.Next(16)).ToArray();   // 52 predictions: 6 windows of 8, one of 4
        var result = WholeTextEvaluation.Run(model, tokens, batchSize: 4);
        Assert.Equal((52L, 7L), (result.Tokens, result.Windows));
        // Independently: one window per call, log-softmax by a loop in double precision.
        model.eval();
        using var _ = no_grad();
        var total = 0.0;
        for (var start = 0; start < 52; start += 8)
        {
            var length = Math.Min(8, 52 - start);
            using var ids = tensor(tokens[start..(start + length)].Select(t => (long)t).ToArray(), [1, length]);
            using var logits = model.call(ids);
            var values = Reference.Values(logits);
            for (var i = 0; i < length; i++)
            {
                var row = values[(i * 16)..((i + 1) * 16)];
                var max = row.Max();
                var logSum = max + Math.Log(row.Sum(v => Math.Exp(v - max)));
                total += logSum - row[tokens[start + i + 1]];
            }
        }
        Assert.Equal(total / 52, result.Loss, 1e-5);
        Assert.Throws<ArgumentException>(() => WholeTextEvaluation.Run(model, [1], 4));
    }
}
