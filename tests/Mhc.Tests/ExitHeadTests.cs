using Mhc.Connections;
using Mhc.Interop;
using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>
/// DeepSeek-V4's learned exit head (<c>exit_head: learned</c>): its weights and output recomputed by loops from
/// <c>hc_head</c>'s formula, the model at step 0 equal to the one with the sum, and its tensors through both weight
/// layouts (<c>model.hc_head.{fn,base,scale}</c> in hf).
/// </summary>
public class ExitHeadTests
{
    const int D = 6;

    [Theory]
    [InlineData(4)]
    [InlineData(2)]
    public void Weights_and_output_follow_hc_heads_formula(int n)
    {
        manual_seed(50);
        using var head = new LearnedExitHead(n, D, gateInit: 0.01);
        head.to(ScalarType.Float64);
        Reference.Randomize(head, 0.5);
        using var x = randn([2, 3, n, D], ScalarType.Float64);
        using var weights = head.Weights(x);
        using var output = head.call(x);
        var (phi, alpha, bias) = (Reference.Values(head.Phi), Reference.Values(head.Alpha).Single(), Reference.Values(head.Bias));
        var (xs, w, o) = (Reference.Values(x), Reference.Values(weights), Reference.Values(output));
        Assert.Equal([2L, 3, n], weights.shape);
        Assert.Equal([2L, 3, D], output.shape);
        var nd = n * D;
        for (var token = 0; token < 6; token++)
        {
            // mixes = (v·fnᵀ)·rsqrt(mean(v²) + 1e-6); w = σ(α·mixes + b) + 1e-6; y = Σ_s w_s x_s.
            var v = xs.AsSpan(token * nd, nd).ToArray();
            var inverseRms = 1 / Math.Sqrt(v.Sum(e => e * e) / nd + 1e-6);
            var expectedWeights = new double[n];
            for (var s = 0; s < n; s++)
            {
                var mix = 0.0;
                for (var r = 0; r < nd; r++) mix += v[r] * phi[r * n + s];
                expectedWeights[s] = Reference.Sigmoid(alpha * mix * inverseRms + bias[s]) + 1e-6;
                Assert.Equal(expectedWeights[s], w[token * n + s], 1e-12);
            }
            for (var c = 0; c < D; c++)
            {
                var expected = 0.0;
                for (var s = 0; s < n; s++) expected += expectedWeights[s] * v[s * D + c];
                Assert.Equal(expected, o[token * D + c], 1e-12);
            }
        }
    }

    [Theory]
    [InlineData(ConnectionKind.Manifold)]
    [InlineData(ConnectionKind.HyperDynamic)]
    [InlineData(ConnectionKind.ManifoldLite)]
    public void At_step_0_the_learned_head_gives_the_logits_of_the_sum(ConnectionKind kind)
    {
        Gpt Model(ExitHead head)
        {
            manual_seed(51);
            var model = new Gpt(new GptConfig
            {
                VocabSize = 20, DModel = 16, Layers = 2, Heads = 2, SeqLen = 8,
                Connection = RunConfigDefaults.For(kind) with { ExitHead = head },
            });
            model.to(ScalarType.Float64);
            return model;
        }
        using var sum = Model(ExitHead.Sum);
        using var learned = Model(ExitHead.Learned);
        Assert.Contains(learned.named_parameters(), p => p.name == "exit_head.phi");
        Assert.DoesNotContain(sum.named_parameters(), p => p.name.StartsWith("exit_head.", StringComparison.Ordinal));
        manual_seed(52);
        using var ids = randint(0, 20, [2, 8]);
        using var _ = no_grad();
        // Every weight is ½ + ε at step 0, so the head hands the final norm (½ + ε) times the sum of the streams.
        var states = learned.StreamStates(ids);
        var head = (LearnedExitHead)learned.named_modules().Single(m => m.name == "exit_head").module;
        using (var weights = head.Weights(states[^1]))
            Assert.All(Reference.Values(weights), w => Assert.Equal(0.5 + 1e-6, w, 1e-15));
        using (var output = head.call(states[^1]))
        using (var summed = Streams.Collapse(states[^1]))
        {
            var (o, e) = (Reference.Values(output), Reference.Values(summed));
            for (var i = 0; i < o.Length; i++) Assert.Equal((0.5 + 1e-6) * e[i], o[i], 1e-14);
        }
        foreach (var state in states) state.Dispose();
        // The final RMSNorm removes that scale but for its own ε (1e-6 against a mean square of a few 1e-3 here).
        using var a = sum.call(ids);
        using var b = learned.call(ids);
        var (x, y) = (Reference.Values(a), Reference.Values(b));
        var scale = x.Max(Math.Abs);
        for (var i = 0; i < x.Length; i++) Assert.True(Math.Abs(x[i] - y[i]) <= 1e-3 * scale, $"logit {i}: sum {x[i]}, learned {y[i]}");
    }

    [Fact]
    public void A_learned_head_needs_several_streams()
    {
        var e = Assert.Throws<ArgumentException>(() => (ConnectionOptions.Residual with { ExitHead = ExitHead.Learned }).Validate());
        Assert.Contains("exit_head = learned", e.Message, StringComparison.Ordinal);
        Assert.Equal(ExitHead.Learned, ExitHeadNames.Parse("learned"));
        Assert.Contains("allowed sum, learned", Assert.Throws<ArgumentException>(() => ExitHeadNames.Parse("mean")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_exit_head_parameter_gets_a_gradient_once_the_streams_differ()
    {
        manual_seed(53);
        using var model = new Gpt(new GptConfig
        {
            VocabSize = 20, DModel = 16, Layers = 2, Heads = 2, SeqLen = 8,
            Connection = new ConnectionOptions { ExitHead = ExitHead.Learned },
        });
        Reference.Randomize(model, 0.3);
        using var ids = randint(0, 20, [2, 8]);
        using (var loss = model.Loss(ids, ids)) loss.backward();
        foreach (var (name, p) in model.named_parameters().Where(p => p.name.StartsWith("exit_head.", StringComparison.Ordinal)))
            Assert.True(Reference.Values(p.grad!).Max(Math.Abs) > 1e-8, $"{name} got no gradient");
    }

    [Theory]
    [InlineData(WeightLayout.Hf, false)]
    [InlineData(WeightLayout.MhcNet, false)]
    [InlineData(WeightLayout.Hf, true)]
    public void The_head_round_trips_through_safetensors_under_DeepSeeks_names(WeightLayout layout, bool vision)
    {
        const int n = 4, d = 16;
        nn.Module<Tensor, Tensor> Model(int seed, ExitHead head)
        {
            manual_seed(seed);
            var connection = new ConnectionOptions { Kind = ConnectionKind.ManifoldLite, Streams = n, ExitHead = head };
            nn.Module<Tensor, Tensor> model = vision
                ? new Vit(new VitConfig { ImageSize = 8, PatchSize = 4, Classes = 3, DModel = d, Layers = 1, Heads = 2, Connection = connection })
                : new Gpt(new GptConfig { VocabSize = 32, DModel = d, Layers = 1, Heads = 2, SeqLen = 8, Connection = connection });
            using (no_grad())
                foreach (var p in model.parameters()) p.add_(randn_like(p) * 0.1);
            model.eval();
            return model;
        }
        using var temp = TestPaths.Temp();
        using var source = Model(1, ExitHead.Learned);
        using var target = Model(2, ExitHead.Learned);
        var path = temp.File("w.safetensors");
        ModelWeights.Save(source, path, new WeightFileOptions { Layout = layout });

        Dictionary<string, (long[] Shape, double[] Values)> file;
        using (var stream = File.OpenRead(path))
            file = Safetensors.Read(stream).Tensors.ToDictionary(t => t.Name, t => (t.Shape, Reference.Values(t.Read())));
        var ours = source.named_parameters().ToDictionary(p => p.name, p => Reference.Values(p.parameter));
        if (layout == WeightLayout.Hf)
        {
            var (fn, @base, scale) = (file["model.hc_head.fn"], file["model.hc_head.base"], file["model.hc_head.scale"]);
            Assert.Equal([n, n * d], fn.Shape);
            Assert.Equal([n], @base.Shape);
            Assert.Equal([1L], scale.Shape);
            var phi = ours["exit_head.phi"];   // [n·d, n]
            for (var s = 0; s < n; s++)
                for (var r = 0; r < n * d; r++) Assert.Equal(phi[r * n + s], fn.Values[s * n * d + r]);
            Assert.Equal(ours["exit_head.bias"], @base.Values);
            Assert.Equal(ours["exit_head.alpha"], scale.Values);
            // mHC-lite's connections keep our names under DeepSeek's prefix: its H_res logits are not DeepSeek's comb.
            Assert.Equal([24L], file["model.layers.0.attn_hc.bias_res"].Shape);   // 4! permutation logits
        }
        else Assert.Equal([n * d, n], file["exit_head.phi"].Shape);

        manual_seed(99);
        using var input = vision ? randn(2, 3, 8, 8) : randint(0, 32, [2, 8]);
        float[] Logits(nn.Module<Tensor, Tensor> model)
        {
            using var _ = no_grad();
            using var logits = model.call(input);
            return logits.data<float>().ToArray();
        }
        Assert.NotEqual(Logits(source), Logits(target));
        ModelWeights.Load(target, path);
        Assert.Equal(Logits(source), Logits(target));

        // Strict: a model with the sum has no exit head, so the file holds a tensor it does not have.
        using var summing = Model(3, ExitHead.Sum);
        var e = Assert.Throws<WeightFileException>(() => ModelWeights.Load(summing, path));
        Assert.Contains(layout == WeightLayout.Hf ? "model.hc_head." : "exit_head.", e.Message, StringComparison.Ordinal);
    }
}
