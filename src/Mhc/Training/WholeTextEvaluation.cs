using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>The loss of a language model on a whole text, and how much of it was evaluated.</summary>
/// <param name="Loss">Mean cross-entropy over every predicted token (nats per token).</param>
/// <param name="Tokens">Tokens predicted: all but the first.</param>
/// <param name="Windows">Windows the text was cut into.</param>
public sealed record WholeTextResult(double Loss, long Tokens, long Windows);

/// <summary>
/// Evaluates a <see cref="Gpt"/> on a whole token sequence cut into consecutive windows: window k reads tokens
/// kT … kT + T − 1 and predicts kT + 1 … kT + T (T = seq_len); a last, shorter window predicts what is left, so every
/// token but the first is predicted exactly once. The loss is the mean over those predictions. The PyTorch twin
/// (interop/python) cuts the same windows.
/// </summary>
public static class WholeTextEvaluation
{
    /// <summary>Runs <paramref name="model"/> in eval mode over <paramref name="tokens"/>, <paramref name="batchSize"/> windows at a time.</summary>
    /// <param name="model">The model (its device is used).</param>
    /// <param name="tokens">Token ids, at least two.</param>
    /// <param name="batchSize">Windows per forward pass.</param>
    /// <param name="progress">Receives (tokens predicted so far, total) after each batch.</param>
    public static WholeTextResult Run(Gpt model, IReadOnlyList<int> tokens, int batchSize, Action<long, long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Count < 2) throw new ArgumentException($"a text of {tokens.Count} tokens has nothing to predict: at least 2 are needed.", nameof(tokens));
        if (batchSize < 1) throw new ArgumentException($"batch size = {batchSize} is out of range: allowed >= 1.", nameof(batchSize));
        var t = model.Config.SeqLen;
        var predicted = tokens.Count - 1L;
        var full = predicted / t;
        var rest = (int)(predicted % t);
        var device = model.parameters().First().device;
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var _ = no_grad();
            var (sum, done) = (0.0, 0L);
            for (var first = 0L; first < full; first += batchSize)
            {
                var count = (int)Math.Min(batchSize, full - first);
                sum += LossSum(model, tokens, Enumerable.Range(0, count).Select(i => (first + i) * t).ToArray(), t, device);
                done += (long)count * t;
                progress?.Invoke(done, predicted);
            }
            if (rest > 0)
            {
                sum += LossSum(model, tokens, [full * t], rest, device);
                done += rest;
                progress?.Invoke(done, predicted);
            }
            return new WholeTextResult(sum / predicted, predicted, full + (rest > 0 ? 1 : 0));
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    // The summed loss of windows of `length` + 1 tokens starting at `starts`.
    static double LossSum(Gpt model, IReadOnlyList<int> tokens, long[] starts, int length, Device device)
    {
        using var scope = NewDisposeScope();
        var data = new long[starts.Length * (length + 1)];
        for (var b = 0; b < starts.Length; b++)
            for (var i = 0; i <= length; i++) data[b * (length + 1) + i] = tokens[(int)(starts[b] + i)];
        var all = tensor(data, [starts.Length, length + 1], device: device);
        return model.Loss(all.narrow(1, 0, length), all.narrow(1, 1, length)).ToDouble() * starts.Length * length;
    }
}
