using Mhc.Connections;
using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

public class GptTests
{
    static GptConfig Small(ConnectionKind kind) => new()
    {
        VocabSize = 40, DModel = 16, Layers = 2, Heads = 2, SeqLen = 12,
        Connection = RunConfigDefaults.For(kind),
    };

    [Theory]
    [InlineData(ConnectionKind.Residual)]
    [InlineData(ConnectionKind.HyperDynamic)]
    [InlineData(ConnectionKind.Manifold)]
    public void Logits_are_causal_and_shaped(ConnectionKind kind)
    {
        manual_seed(50);
        using var model = new Gpt(Small(kind));
        Reference.Randomize(model, 0.3);
        using var ids = randint(0, 40, [2, 12]);
        using var logits = model.call(ids);
        Assert.Equal([2L, 12, 40], logits.shape);
        using var changed = ids.clone();
        changed[0, 8] = tensor(39L - ids[0, 8].item<long>());
        using var logits2 = model.call(changed);
        var a = Reference.Values(logits[0]);
        var b = Reference.Values(logits2[0]);
        for (var t = 0; t < 12; t++)
        {
            var differs = Enumerable.Range(0, 40).Any(v => Math.Abs(a[t * 40 + v] - b[t * 40 + v]) > 1e-6);
            Assert.Equal(t >= 8, differs);
        }
    }

    [Fact]
    public void Stream_states_span_every_sub_layer_and_match_forward()
    {
        manual_seed(51);
        using var model = new Gpt(Small(ConnectionKind.Manifold));
        using var ids = randint(0, 40, [1, 12]);
        var states = model.StreamStates(ids);
        Assert.Equal(5, states.Count);
        Assert.All(states, s => Assert.Equal([1L, 12, 4, 16], s.shape));
        Assert.Equal(4, model.Connections.Count);
        Assert.Equal([0, 1, 2, 3], model.Connections.Select(c => c.SublayerIndex));
    }

    [Fact]
    public void Rejects_sequences_longer_than_the_context()
    {
        using var model = new Gpt(Small(ConnectionKind.Residual));
        using var ids = zeros([1, 13], ScalarType.Int64);
        Assert.Contains("seq_len = 12", Assert.Throws<ArgumentException>(() => model.call(ids)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Greedy_generation_is_deterministic_and_extends_the_prompt()
    {
        manual_seed(52);
        using var model = new Gpt(Small(ConnectionKind.Manifold));
        model.eval();
        using var g1 = new Generator(3);
        using var g2 = new Generator(3);
        var a = model.Generate([1, 2, 3], 20, 0.9, 5, g1);
        var b = model.Generate([1, 2, 3], 20, 0.9, 5, g2);
        Assert.Equal(20, a.Count);
        Assert.Equal(a, b);
        Assert.All(a, t => Assert.InRange(t, 0, 39));
    }

    [Theory]
    [InlineData(ConnectionKind.Residual, true)]
    [InlineData(ConnectionKind.Manifold, true)]
    [InlineData(ConnectionKind.Manifold, false)]
    public void Greedy_generation_picks_the_argmax_of_the_full_forward_at_the_last_position(ConnectionKind kind, bool useCache)
    {
        // Generation runs the head on the last position only; the reference runs forward over the whole window.
        manual_seed(54);
        using var model = new Gpt(Small(kind));
        Reference.Randomize(model, 0.3);
        model.eval();
        using var generator = new Generator(1);
        List<int> prompt = [1, 2, 3, 4, 5];
        var generated = model.Generate(prompt, 20, 0, 0, generator, useCache);   // 25 tokens: past seq_len 12
        var context = prompt.ToList();
        using var _ = no_grad();
        foreach (var token in generated)
        {
            var window = context.Skip(Math.Max(0, context.Count - 12)).Select(t => (long)t).ToArray();
            using var ids = tensor(window, [1, window.Length]);
            using var logits = model.call(ids);
            Assert.Equal(logits[0, -1].argmax().item<long>(), token);
            context.Add(token);
        }
        Assert.True(generated.Distinct().Count() > 3, "the generated tokens barely vary: the test would not see a wrong position");
    }

    [Theory]
    [InlineData(ConnectionKind.Residual)]
    [InlineData(ConnectionKind.HyperStatic)]
    [InlineData(ConnectionKind.HyperDynamic)]
    [InlineData(ConnectionKind.Manifold)]
    public void The_key_value_cache_gives_the_tokens_of_full_recomputation_across_the_window_edge(ConnectionKind kind)
    {
        // seq_len 12: a 5-token prompt and 30 new tokens slide the context 23 tokens past the window's edge.
        manual_seed(53);
        using var model = new Gpt(Small(kind));
        Reference.Randomize(model, 0.3);   // far from the init, so the tokens vary and depend on the context
        model.eval();
        using var g1 = new Generator(1);
        using var g2 = new Generator(1);
        var cached = model.Generate([1, 2, 3, 4, 5], 30, 0, 0, g1, useCache: true);
        var recomputed = model.Generate([1, 2, 3, 4, 5], 30, 0, 0, g2, useCache: false);
        Assert.Equal(recomputed, cached);
        Assert.True(recomputed.Distinct().Count() > 3, "the generated tokens barely vary: the test would not see a wrong context");
        // A prompt longer than the context: only its last seq_len tokens count, in both paths.
        var longPrompt = Enumerable.Range(0, 20).Select(i => i % 40).ToList();
        Assert.Equal(model.Generate(longPrompt, 10, 0, 0, g2, useCache: false), model.Generate(longPrompt, 10, 0, 0, g1, useCache: true));
    }
}

static class RunConfigDefaults
{
    public static ConnectionOptions For(ConnectionKind kind) =>
        kind == ConnectionKind.Residual ? ConnectionOptions.Residual : new ConnectionOptions { Kind = kind, Streams = 4 };
}
