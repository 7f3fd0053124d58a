using Mhc.Cli;
using Mhc.Connections;
using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>
/// mHC's variants (docs/connections.md) against independent computations: their coefficients token by token from the
/// formulas (mHC-lite's H_res as an explicit sum over permutation matrices), gradients by finite differences, the fixed
/// maps of the ablation, and the ablation's known property: with H_post fixed the network is the residual network.
/// </summary>
public class ManifoldVariantTests
{
    const int Tokens = 6;

    public static readonly TheoryData<ConnectionKind, int> Variants = new()
    {
        { ConnectionKind.ManifoldStatic, 4 },
        { ConnectionKind.ManifoldStatic, 2 },
        { ConnectionKind.ManifoldLite, 4 },
        { ConnectionKind.ManifoldLite, 3 },
        { ConnectionKind.ManifoldResOnly, 4 },
        { ConnectionKind.ManifoldResPre, 3 },
    };

    /// <summary>Every permutation of 0 … n − 1 in lexicographic order, found among all n^n tuples in counting order.</summary>
    static List<int[]> LexicographicPermutations(int n)
    {
        var result = new List<int[]>();
        var total = (int)Math.Pow(n, n);
        for (var code = 0; code < total; code++)
        {
            var tuple = new int[n];
            for (int i = n - 1, c = code; i >= 0; i--, c /= n) tuple[i] = c % n;
            if (tuple.Distinct().Count() == n) result.Add(tuple);
        }
        return result;
    }

    static double[]? Values(Connection connection, string name) =>
        connection.named_parameters().FirstOrDefault(p => p.name == name).parameter is { } p ? Reference.Values(p) : null;

    [Theory]
    [MemberData(nameof(Variants))]
    public void Coefficients_follow_each_variants_formula(ConnectionKind kind, int n)
    {
        manual_seed(40);
        var d = ConnectionFixture.D;
        using var connection = ConnectionFixture.Create(kind, n);
        Reference.Randomize(connection, 0.5);
        using var x = ConnectionFixture.State(n);
        using var m = connection.Coefficients(x);
        var (pre, post, res) = (Reference.Values(m.Pre), Reference.Values(m.Post), Reference.Values(m.Res));

        var phi = Values(connection, "phi");
        var (biasPre, biasPost, biasRes) = (Values(connection, "bias_pre"), Values(connection, "bias_post"), Values(connection, "bias_res")!);
        double Alpha(string name) => Values(connection, name)?.Single() ?? 0;
        var lite = kind == ConnectionKind.ManifoldLite;
        var permutations = LexicographicPermutations(n);
        var resWidth = lite ? permutations.Count : n * n;
        var (preWidth, postWidth) = (biasPre is null ? 0 : n, biasPost is null ? 0 : n);
        var width = preWidth + postWidth + resWidth;
        Assert.Equal(kind == ConnectionKind.ManifoldStatic, phi is null);
        var xs = Reference.Values(x);
        var nd = n * d;
        for (var token = 0; token < Tokens; token++)
        {
            // The projection of the RMS-normalised flattened state; all zero for the static variant, which has no φ.
            var proj = new double[width];
            if (phi is not null)
            {
                var v = xs.AsSpan(token * nd, nd).ToArray();
                var rms = Math.Sqrt(v.Sum(e => e * e) / nd + ManifoldHyperConnection.RmsEpsilon);
                for (var k = 0; k < width; k++)
                    for (var r = 0; r < nd; r++)
                        proj[k] += v[r] / rms * phi[r * width + k];
            }
            for (var i = 0; i < n; i++)
            {
                var expectedPre = biasPre is null ? 1.0 / n : Reference.Sigmoid(Alpha("alpha_pre") * proj[i] + biasPre[i]);
                var expectedPost = biasPost is null ? 1.0 : 2 * Reference.Sigmoid(Alpha("alpha_post") * proj[preWidth + i] + biasPost[i]);
                Assert.Equal(expectedPre, pre[token * n + i], 1e-10);
                Assert.Equal(expectedPost, post[token * n + i], 1e-10);
            }
            var logits = Enumerable.Range(0, resWidth).Select(k => Alpha("alpha_res") * proj[preWidth + postWidth + k] + biasRes[k]).ToArray();
            var expected = new double[n, n];
            if (lite)
            {
                // H_res = Σ_k softmax(logits)_k P_k, P_k[i, j] = 1 where permutation k sends output stream i to input stream j.
                var max = logits.Max();
                var weights = logits.Select(l => Math.Exp(l - max)).ToArray();
                var total = weights.Sum();
                for (var k = 0; k < permutations.Count; k++)
                    for (var i = 0; i < n; i++)
                        expected[i, permutations[k][i]] += weights[k] / total;
            }
            else
            {
                var matrix = new double[n, n];
                for (var k = 0; k < n * n; k++) matrix[k / n, k % n] = logits[k];
                expected = Reference.Sinkhorn(matrix, 20);
            }
            for (var i = 0; i < n; i++)
                for (var j = 0; j < n; j++)
                    Assert.Equal(expected[i, j], res[(token * n + i) * n + j], 1e-10);
        }
    }

    [Fact]
    public void Lite_H_res_is_exactly_doubly_stochastic_with_widely_spread_logits()
    {
        manual_seed(41);
        const int n = 4;
        using var connection = ConnectionFixture.Create(ConnectionKind.ManifoldLite, n);
        Reference.Randomize(connection, 3.0);
        using var x = ConnectionFixture.State(n) * 10;
        using var m = connection.Coefficients(x);
        var res = Reference.Values(m.Res);
        for (var token = 0; token < Tokens; token++)
        {
            var h = Reference.Matrix(res, token, n);
            for (var i = 0; i < n; i++)
            {
                Assert.Equal(1.0, Enumerable.Range(0, n).Sum(j => h[i, j]), 1e-13);
                Assert.Equal(1.0, Enumerable.Range(0, n).Sum(j => h[j, i]), 1e-13);
                Assert.All(Enumerable.Range(0, n), j => Assert.True(h[i, j] >= 0));
            }
        }
        // Sinkhorn at its default iterations is not exact with logits this spread; the convex combination is.
        using var manifold = ConnectionFixture.Create(ConnectionKind.Manifold, n);
        Reference.Randomize(manifold, 3.0);
        using var sinkhorn = manifold.Coefficients(x);
        Assert.True((sinkhorn.Res.sum(-2) - 1).abs().max().ToDouble() > 1e-10, "the contrast case should show Sinkhorn's residual error");
    }

    [Fact]
    public void Static_coefficients_are_the_biases_alone_whatever_the_state()
    {
        manual_seed(42);
        const int n = 4;
        using var connection = ConnectionFixture.Create(ConnectionKind.ManifoldStatic, n);
        Reference.Randomize(connection, 0.5);
        Assert.Equal(["bias_post", "bias_pre", "bias_res"], connection.named_parameters().Select(p => p.name).Where(s => !s.StartsWith("branch.", StringComparison.Ordinal)).Order());
        using var a = ConnectionFixture.State(n);
        using var b = ConnectionFixture.State(n) * 7;
        using var ma = connection.Coefficients(a);
        using var mb = connection.Coefficients(b);
        Assert.Equal(Reference.Values(ma.Pre), Reference.Values(mb.Pre));
        Assert.Equal(Reference.Values(ma.Post), Reference.Values(mb.Post));
        Assert.Equal(Reference.Values(ma.Res), Reference.Values(mb.Res));
        // …and every token gets the same ones.
        var pre = Reference.Values(ma.Pre);
        Assert.All(Enumerable.Range(0, pre.Length), i => Assert.Equal(pre[i % n], pre[i]));
    }

    [Theory]
    [InlineData(ConnectionKind.ManifoldResOnly, new[] { "alpha_res", "bias_res", "phi" })]
    [InlineData(ConnectionKind.ManifoldResPre, new[] { "alpha_pre", "alpha_res", "bias_pre", "bias_res", "phi" })]
    public void The_ablation_fixes_the_maps_it_does_not_learn(ConnectionKind kind, string[] parameters)
    {
        manual_seed(43);
        const int n = 4;
        using var connection = ConnectionFixture.Create(kind, n);
        Reference.Randomize(connection, 0.5);
        Assert.Equal(parameters, connection.named_parameters().Select(p => p.name).Where(s => !s.StartsWith("branch.", StringComparison.Ordinal)).Order());
        using var m = connection.Coefficients(ConnectionFixture.State(n));
        // The paper's replacements, exactly: H_post = 1, and H_pre = 1/n unless learned.
        Assert.All(Reference.Values(m.Post), p => Assert.Equal(1.0, p));
        var pre = Reference.Values(m.Pre);
        if (kind == ConnectionKind.ManifoldResOnly) Assert.All(pre, p => Assert.Equal(1.0 / n, p));
        else Assert.True(pre.Max() - pre.Min() > 0.05, "a learned H_pre should vary with random parameters");
    }

    [Theory]
    [InlineData(ConnectionKind.ManifoldStatic)]
    [InlineData(ConnectionKind.ManifoldLite)]
    [InlineData(ConnectionKind.ManifoldResOnly)]
    [InlineData(ConnectionKind.ManifoldResPre)]
    public void Gradients_match_central_finite_differences(ConnectionKind kind)
    {
        manual_seed(44);
        const int n = 3;
        using var connection = ConnectionFixture.Create(kind, n);
        Reference.Randomize(connection, 0.5);
        using var x = randn([1, 2, n, ConnectionFixture.D], ScalarType.Float64);
        using var weights = randn_like(x);
        double Loss()
        {
            using var _ = no_grad();
            using var output = connection.call(x);
            return (output * weights).sum().ToDouble();
        }
        using (var loss = (connection.call(x) * weights).sum()) loss.backward();
        const double h = 1e-6;
        var checkedCount = 0;
        foreach (var (name, parameter) in connection.named_parameters().Where(p => !p.name.StartsWith("branch.", StringComparison.Ordinal)))
        {
            var analytic = Reference.Values(parameter.grad!);
            using var flat = parameter.detach().view(-1);
            // A few entries of each parameter, spread over it.
            foreach (var i in new[] { 0L, flat.size(0) / 2, flat.size(0) - 1 }.Distinct())
            {
                var original = flat[i].ToDouble();
                double At(double value)
                {
                    using (no_grad()) flat[i].fill_(value);
                    return Loss();
                }
                var numeric = (At(original + h) - At(original - h)) / (2 * h);
                At(original);
                Assert.True(Math.Abs(numeric - analytic[i]) <= 1e-6 * (1 + Math.Abs(numeric)), $"{kind} {name}[{i}]: autograd {analytic[i]}, finite differences {numeric}");
                checkedCount++;
            }
        }
        Assert.True(checkedCount >= 3);
    }

    [Fact]
    public void Lite_with_more_than_six_streams_is_refused_by_name()
    {
        var e = Assert.Throws<ArgumentException>(() => new ConnectionOptions { Kind = ConnectionKind.ManifoldLite, Streams = 7 }.Validate());
        Assert.Contains("mhc-lite", e.Message, StringComparison.Ordinal);
        Assert.Contains("5,040", e.Message, StringComparison.Ordinal);
        Assert.Contains("allowed 2..6", e.Message, StringComparison.Ordinal);
        new ConnectionOptions { Kind = ConnectionKind.ManifoldLite, Streams = 6 }.Validate();

        using var temp = TestPaths.Temp();
        var (code, err) = InProcessCli.Run(["train", "--connection", "mhc-lite", "--streams", "7", "--steps", "1", "--out", temp.File("run")]);
        Assert.Equal(ExitCodes.InvalidArguments, code);
        Assert.Contains("mhc-lite", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(temp.File("run")), "nothing should be written for a refused option");
    }

    static Gpt TinyGpt(ConnectionKind kind)
    {
        manual_seed(45);
        var model = new Gpt(new GptConfig { VocabSize = 16, DModel = 16, Layers = 2, Heads = 2, SeqLen = 8, Connection = RunConfigDefaults.For(kind) });
        model.to(ScalarType.Float64);
        return model;
    }

    /// <summary>Trains on a fixed batch with AdamW; returns the loss before each step.</summary>
    static List<double> Train(Gpt model, int steps)
    {
        var generator = new Generator(8);
        using var ids = randint(0, 16, [4, 8], generator: generator);
        using var targets = randint(0, 16, [4, 8], generator: generator);
        using var optimizer = optim.AdamW(model.parameters(), 1e-2, weight_decay: 0);
        var losses = new List<double>();
        for (var step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = model.Loss(ids, targets);
            losses.Add(loss.ToDouble());
            loss.backward();
            optimizer.step();
        }
        return losses;
    }

    [Theory]
    [InlineData(ConnectionKind.ManifoldResOnly)]
    [InlineData(ConnectionKind.ManifoldResPre)]
    public void With_H_post_fixed_identical_streams_stay_identical_whatever_the_parameters(ConnectionKind kind)
    {
        manual_seed(46);
        const int n = 4;
        var d = ConnectionFixture.D;
        using var connection = ConnectionFixture.Create(kind, n);
        Reference.Randomize(connection, 0.5);
        using var h = randn([2, 3, d], ScalarType.Float64);
        using var x = Streams.Expand(h, n);
        using var output = connection.call(x);
        using var m = connection.Coefficients(x);
        // Each stream becomes h + F(s·h), s = Σ_j H_pre_j: the residual update with a rescaled branch input.
        var s = Reference.Values(m.Pre.sum(-1));
        var o = Reference.Values(output);
        for (var token = 0; token < Tokens; token++)
        {
            using var scaled = h.flatten(0, 1)[token] * s[token];
            using var branch = connection.Branch.call(scaled.view(1, 1, d));
            var (f, hs) = (Reference.Values(branch), Reference.Values(h.flatten(0, 1)[token]));
            for (var i = 0; i < n; i++)
                for (var c = 0; c < d; c++)
                    Assert.Equal(hs[c] + f[c], o[(token * n + i) * d + c], 1e-12);
        }
        Assert.True(kind == ConnectionKind.ManifoldResOnly || s.Max() - s.Min() > 0.01, "a learned H_pre should scale tokens differently");
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void With_H_post_fixed_every_stream_is_the_residual_network_for_ever()
    {
        // Replicated entry streams, the same F output added to each (H_post = 1) and rows of H_res summing to 1 keep
        // the streams identical copies; H_pre then only scales the branch input, which the branch's pre-norm removes.
        // What is left is the RMSNorms' ε (1e-6), which sees the state scaled by n at the exit and by Σ H_pre at a branch.
        const int steps = 6;
        using var residual = TinyGpt(ConnectionKind.Residual);
        var residualLosses = Train(residual, steps);
        double Gap(List<double> losses) => losses.Zip(residualLosses, (a, b) => Math.Abs(a - b) / b).Max();
        using (var full = TinyGpt(ConnectionKind.Manifold))
        {
            // Full mHC learns H_post: its streams separate and its losses leave the residual network's.
            var fullLosses = Train(full, steps);
            Assert.True(Math.Abs(fullLosses[^1] - residualLosses[^1]) / residualLosses[^1] > 2e-4, $"mhc {fullLosses[^1]}, residual {residualLosses[^1]}");
        }
        using var ids = randint(0, 16, [2, 8]);
        foreach (var kind in new[] { ConnectionKind.ManifoldResOnly, ConnectionKind.ManifoldResPre })
        {
            using var ablation = TinyGpt(kind);
            var losses = Train(ablation, steps);
            Assert.True(Gap(losses) < 5e-5, $"{kind}: largest relative gap to residual's loss {Gap(losses)}: {string.Join(", ", losses)} against {string.Join(", ", residualLosses)}");
            using var _ = no_grad();
            var states = ablation.StreamStates(ids);
            const int n = 4, d = 16;
            foreach (var state in states)
            {
                // The streams of one token are still copies of each other after training.
                var streams = Reference.Values(state);
                for (var i = 0; i < streams.Length; i++)
                    Assert.Equal(streams[i / (n * d) * n * d + i % d], streams[i], 1e-12);
            }
            foreach (var t in states) t.Dispose();
        }
    }
}
