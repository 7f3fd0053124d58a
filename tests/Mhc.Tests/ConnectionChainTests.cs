using Mhc.Connections;
using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>
/// A whole model through the fused chain (one autograd node per segment, re-entrant branch backward), with
/// and without recomputation, must give the reference path's loss and every parameter's gradient.
/// </summary>
public class ConnectionChainTests
{
    static (double Loss, Dictionary<string, double[]> Grads) LossAndGrads(ConnectionKind kind, bool fused, bool recompute, int layers, int batch = 3)
    {
        manual_seed(90);
        var options = kind == ConnectionKind.Residual ? ConnectionOptions.Residual : new ConnectionOptions { Kind = kind, Streams = 4 };
        using var model = new Gpt(new GptConfig
        {
            VocabSize = 30, DModel = 16, Layers = layers, Heads = 2, SeqLen = 10, Dropout = 0.1,
            Connection = options with { Fused = fused, Recompute = recompute },
        });
        model.to(ScalarType.Float64);
        Reference.Randomize(model, 0.3);
        manual_seed(91);
        using var ids = randint(0, 30, [batch, 10]);
        using var targets = randint(0, 30, [batch, 10]);
        manual_seed(92);   // dropout draws the same masks in every variant
        using var loss = model.Loss(ids, targets);
        loss.backward();
        return (loss.ToDouble(), model.named_parameters().ToDictionary(p => p.name, p => Reference.Values(p.parameter.grad!)));
    }

    [Theory]
    [InlineData(ConnectionKind.Manifold, false, 3)]
    [InlineData(ConnectionKind.Manifold, true, 3)]
    [InlineData(ConnectionKind.Manifold, true, 1)]
    [InlineData(ConnectionKind.HyperDynamic, false, 3)]
    [InlineData(ConnectionKind.HyperDynamic, true, 3)]
    [InlineData(ConnectionKind.HyperStatic, true, 2)]
    [InlineData(ConnectionKind.ManifoldStatic, false, 2)]
    [InlineData(ConnectionKind.ManifoldLite, true, 2)]
    [InlineData(ConnectionKind.ManifoldResOnly, false, 2)]
    [InlineData(ConnectionKind.ManifoldResPre, true, 2)]
    // 70 tokens: several work items of each kernel, the last one short, so the writes and write backwards
    // fused into the next connection's passes are made range by range.
    [InlineData(ConnectionKind.Manifold, false, 3, 7)]
    [InlineData(ConnectionKind.Manifold, true, 3, 7)]
    [InlineData(ConnectionKind.HyperDynamic, false, 3, 7)]
    public void Fused_chain_matches_the_reference_path(ConnectionKind kind, bool recompute, int layers, int batch = 3)
    {
        var reference = LossAndGrads(kind, fused: false, recompute: false, layers, batch);
        var fused = LossAndGrads(kind, fused: true, recompute, layers, batch);
        Assert.Equal(reference.Loss, fused.Loss, 1e-10);
        Assert.Equal(reference.Grads.Keys.Order(), fused.Grads.Keys.Order());
        foreach (var (name, expected) in reference.Grads)
        {
            var actual = fused.Grads[name];
            for (var i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-9 * (1 + Math.Abs(expected[i])), $"{name}[{i}]: reference {expected[i]}, fused {actual[i]}");
        }
        Assert.Contains(reference.Grads, g => g.Key.EndsWith("branch.qkv.weight", StringComparison.Ordinal) && g.Value.Any(v => v != 0));
    }

    static double[] EvalLogits(ConnectionKind kind, bool fused, int batch)
    {
        manual_seed(94);
        using var model = new Gpt(new GptConfig
        {
            VocabSize = 30, DModel = 16, Layers = 3, Heads = 2, SeqLen = 10,
            Connection = new ConnectionOptions { Kind = kind, Streams = 4, Fused = fused },
        });
        model.to(ScalarType.Float64);
        model.eval();
        Reference.Randomize(model, 0.3);
        manual_seed(95);
        using var ids = randint(0, 30, [batch, 10]);
        using var _ = no_grad();
        using var logits = model.call(ids);
        return Reference.Values(logits);
    }

    [Theory]
    [InlineData(ConnectionKind.Manifold, 1)]
    [InlineData(ConnectionKind.Manifold, 7)]    // 70 tokens: each write made range by range inside the next coefficient pass
    [InlineData(ConnectionKind.HyperDynamic, 7)]
    [InlineData(ConnectionKind.HyperStatic, 2)]
    [InlineData(ConnectionKind.ManifoldLite, 7)]
    [InlineData(ConnectionKind.ManifoldResPre, 2)]
    public void Fused_chain_without_gradients_matches_the_reference_path(ConnectionKind kind, int batch)
    {
        var reference = EvalLogits(kind, fused: false, batch);
        var fused = EvalLogits(kind, fused: true, batch);
        Assert.Equal(reference.Length, fused.Length);
        for (var i = 0; i < reference.Length; i++)
            Assert.True(Math.Abs(reference[i] - fused[i]) <= 1e-10 * (1 + Math.Abs(reference[i])), $"[{i}]: reference {reference[i]}, fused {fused[i]}");
    }

    [Theory]
    [InlineData(4, 16, 3)]
    [InlineData(4, 60, 6)]
    [InlineData(2, 8, 2)]
    [InlineData(4, 1, 1)]
    public void Recompute_segments_follow_the_papers_formula(int n, int sublayers, int expected) =>
        Assert.Equal(expected, ConnectionChain.RecomputeSegment(n, sublayers));

    [Fact]
    public void Parameters_get_gradients_even_when_the_input_state_does_not_require_one()
    {
        manual_seed(93);
        using var connection = Connection.Create(new ConnectionOptions(), 8, 0, new TestBranch(8));
        Reference.Randomize(connection, 0.5);
        using var x = randn(2, 3, 4, 8);
        using (var loss = connection.call(x).square().sum()) loss.backward();
        Assert.All(connection.named_parameters(), p => Assert.True(p.parameter.grad is not null && Reference.Values(p.parameter.grad).Any(v => v != 0), p.name));
    }
}
