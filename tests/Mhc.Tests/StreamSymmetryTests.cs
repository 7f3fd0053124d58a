using Mhc.Connections;
using Mhc.Diagnostics;
using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>
/// The n streams must be able to separate, or H_res has nothing to mix (docs/spec.md, "Initialisation"). The
/// embedding enters as n identical copies; an initialisation that is also symmetric under permuting the streams
/// stays symmetric under gradient descent, and then the H_res logits get exactly zero gradient.
/// </summary>
public class StreamSymmetryTests
{
    const int Steps = 30;

    static Gpt TinyModel(ConnectionKind kind)
    {
        manual_seed(123);
        var model = new Gpt(new GptConfig
        {
            VocabSize = 16, DModel = 16, Layers = 2, Heads = 2, SeqLen = 8,
            Connection = new ConnectionOptions { Kind = kind, Streams = 4 },
        });
        model.to(ScalarType.Float64);
        return model;
    }

    /// <summary>Trains on a fixed batch of random tokens; returns the gradient of every parameter after each step.</summary>
    static List<Dictionary<string, double>> Train(Gpt model, int steps)
    {
        var generator = new Generator(7);
        using var ids = randint(0, 16, [4, 8], generator: generator);
        using var targets = randint(0, 16, [4, 8], generator: generator);
        using var optimizer = optim.AdamW(model.parameters(), 1e-2);
        var gradients = new List<Dictionary<string, double>>();
        for (var step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            model.Loss(ids, targets).backward();
            gradients.Add(model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad is { } g ? g.abs().max().ToDouble() : 0));
            optimizer.step();
        }
        return gradients;
    }

    /// <summary>Largest over tokens and streams of ‖x_i − x̄‖ / ‖x̄‖, with x̄ the mean stream: a plain loop.</summary>
    static double RelativeSpread(Tensor state)
    {
        var (tokens, n, d) = (state.size(0) * state.size(1), (int)state.size(2), (int)state.size(3));
        var x = Reference.Values(state);
        var spread = 0.0;
        for (var t = 0; t < tokens; t++)
        {
            var mean = new double[d];
            for (var i = 0; i < n; i++)
                for (var c = 0; c < d; c++) mean[c] += x[(t * n + i) * d + c] / n;
            var norm = Math.Sqrt(mean.Sum(v => v * v));
            for (var i = 0; i < n; i++)
            {
                var distance = 0.0;
                for (var c = 0; c < d; c++) distance += Math.Pow(x[(t * n + i) * d + c] - mean[c], 2);
                spread = Math.Max(spread, Math.Sqrt(distance) / norm);
            }
        }
        return spread;
    }

    static List<double[]> ResMatrices(Gpt model, Tensor ids)
    {
        using var _ = no_grad();
        var states = model.StreamStates(ids);
        return model.Connections.Select((c, k) =>
        {
            using var m = c.Coefficients(states[k]);
            return Reference.Values(m.Res);
        }).ToList();
    }

    static Tensor ProbeIds() => arange(8, dtype: ScalarType.Int64).remainder(16).unsqueeze(0);

    [Theory]
    [InlineData(ConnectionKind.Manifold)]
    [InlineData(ConnectionKind.HyperDynamic)]
    [InlineData(ConnectionKind.HyperStatic)]
    public void Streams_separate_and_H_res_learns(ConnectionKind kind)
    {
        using var model = TinyModel(kind);
        using var ids = ProbeIds();
        var before = ResMatrices(model, ids);
        var gradients = Train(model, Steps);
        model.eval();
        using var _ = no_grad();
        var states = model.StreamStates(ids);
        // (a) Sub-layer 0 reads the replicated embedding; every later state has separated streams.
        Assert.True(RelativeSpread(states[0]) < 1e-15);
        for (var k = 1; k < states.Count; k++)
            Assert.True(RelativeSpread(states[k]) > 1e-3, $"{kind}: the streams entering sub-layer {k} differ by only {RelativeSpread(states[k]):E2} after {Steps} steps.");
        // (b) H_res has moved from its initial value in every sub-layer after the first. Sub-layer 0 reads n identical
        // copies of the embedding, on which any matrix whose rows sum to 1 acts alike: its H_res has no effect to learn from.
        var after = ResMatrices(model, ids);
        for (var k = 1; k < after.Count; k++)
        {
            var moved = after[k].Zip(before[k], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(moved > 1e-4, $"{kind}: H_res of sub-layer {k} moved only {moved:E2} in {Steps} steps.");
        }
        // (c) The parameters behind H_res receive gradient within the first steps: at step 1 the streams are still
        // identical and the gradient is zero (about 1e-20 here); from step 2 on it is about 1e-8 and up.
        if (kind == ConnectionKind.Manifold)
        {
            var afterFirst = model.named_parameters().Select(p => p.name).Where(n => !n.StartsWith("blocks.0.attn_conn.", StringComparison.Ordinal));
            foreach (var name in afterFirst.Where(n => n.EndsWith("bias_res", StringComparison.Ordinal)))
                Assert.True(gradients.Take(3).Max(g => g[name]) > 1e-9, $"{name} got no gradient in the first 3 steps.");
            Assert.True(PhiResGradient(model) > 1e-9, "φ_res got no gradient.");
        }
    }

    /// <summary>
    /// The cause, kept as a test so nobody reintroduces it: with every stream read alike (b_pre the same for all, φ = 0)
    /// the initialisation is symmetric under permuting the streams, the streams stay identical, and the H_res
    /// logits get no gradient at all, step after step.
    /// </summary>
    [Fact]
    public void With_a_stream_symmetric_init_H_res_gets_no_gradient()
    {
        using var model = TinyModel(ConnectionKind.Manifold);
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
            {
                if (name.EndsWith("bias_pre", StringComparison.Ordinal)) p.fill_(-Math.Log(3));   // H_pre = 1/n for every stream
                if (name.EndsWith(".phi", StringComparison.Ordinal)) p.zero_();
            }
        var gradients = Train(model, 10);
        foreach (var g in gradients)
            foreach (var (name, value) in g.Where(e => e.Key.EndsWith("bias_res", StringComparison.Ordinal) || e.Key.EndsWith("alpha_res", StringComparison.Ordinal)))
                Assert.True(value < 1e-13, $"{name}: gradient {value:E2} under a symmetric init.");
        Assert.True(gradients.Max(g => g.Where(e => e.Key.EndsWith("bias_post", StringComparison.Ordinal)).Max(e => e.Value)) > 1e-4);
        Assert.True(PhiResGradient(model) < 1e-13);
        using var ids = ProbeIds();
        using var _ = no_grad();
        Assert.All(model.StreamStates(ids), s => Assert.True(RelativeSpread(s) < 1e-12));
    }

    /// <summary>Largest |∂L/∂φ| over the n² columns of φ that feed H_res, in the sub-layers after the first (the last step's gradient).</summary>
    static double PhiResGradient(Gpt model) =>
        model.named_parameters().Where(p => p.name.EndsWith(".phi", StringComparison.Ordinal) && !p.name.StartsWith("blocks.0.attn_conn.", StringComparison.Ordinal))
            .Max(p => p.parameter.grad!.narrow(1, 8, 16).abs().max().ToDouble());

    [Fact]
    public void Stream_diversity_is_one_minus_the_mean_pairwise_cosine()
    {
        manual_seed(5);
        using var x = randn([2, 3, 4, 5], ScalarType.Float64);
        var values = Reference.Values(x);
        var expected = 0.0;
        for (var t = 0; t < 6; t++)
        {
            double Dot(int i, int j) => Enumerable.Range(0, 5).Sum(c => values[(t * 4 + i) * 5 + c] * values[(t * 4 + j) * 5 + c]);
            var cosines = 0.0;
            for (var i = 0; i < 4; i++)
                for (var j = i + 1; j < 4; j++) cosines += Dot(i, j) / Math.Sqrt(Dot(i, i) * Dot(j, j));
            expected += (1 - cosines / 6) / 6;
        }
        Assert.Equal(expected, StabilityProbe.StreamDiversity(x), 1e-12);
        using var same = Streams.Expand(randn([2, 3, 5], ScalarType.Float64), 4);
        Assert.Equal(0, StabilityProbe.StreamDiversity(same), 1e-12);
        Assert.Equal(0, StabilityProbe.StreamDiversity(x.narrow(2, 0, 1)));
    }
}
