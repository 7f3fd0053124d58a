using Mhc.Connections;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>Coefficients recomputed token by token from the papers' formulas (spec §4, §5).</summary>
public class CoefficientFormulaTests
{
    const int Tokens = 6;

    [Fact]
    public void Manifold_coefficients_follow_the_paper_formula()
    {
        manual_seed(30);
        const int n = 4;
        var d = ConnectionFixture.D;
        using var connection = ConnectionFixture.Create(ConnectionKind.Manifold, n);
        Reference.Randomize(connection, 0.5);
        using var x = ConnectionFixture.State(n);
        using var m = connection.Coefficients(x);

        var phi = Reference.Values(Reference.Parameter(connection, "phi"));     // [n·d, n² + 2n]
        var alphaPre = Reference.Values(Reference.Parameter(connection, "alpha_pre")).Single();
        var alphaPost = Reference.Values(Reference.Parameter(connection, "alpha_post")).Single();
        var alphaRes = Reference.Values(Reference.Parameter(connection, "alpha_res")).Single();
        var biasPre = Reference.Values(Reference.Parameter(connection, "bias_pre"));
        var biasPost = Reference.Values(Reference.Parameter(connection, "bias_post"));
        var biasRes = Reference.Values(Reference.Parameter(connection, "bias_res"));
        var xs = Reference.Values(x);
        var pre = Reference.Values(m.Pre);
        var post = Reference.Values(m.Post);
        var res = Reference.Values(m.Res);
        int width = n * n + 2 * n, nd = n * d;

        for (var token = 0; token < Tokens; token++)
        {
            // v = vec(x) over all streams, RMS-normalised over the full n·d.
            var v = xs.AsSpan(token * nd, nd).ToArray();
            var rms = Math.Sqrt(v.Sum(e => e * e) / nd + ManifoldHyperConnection.RmsEpsilon);
            var proj = new double[width];
            for (var k = 0; k < width; k++)
                for (var r = 0; r < nd; r++)
                    proj[k] += v[r] / rms * phi[r * width + k];
            var logits = new double[n, n];
            for (var i = 0; i < n; i++)
            {
                Assert.Equal(Reference.Sigmoid(alphaPre * proj[i] + biasPre[i]), pre[token * n + i], 1e-10);
                Assert.Equal(2 * Reference.Sigmoid(alphaPost * proj[n + i] + biasPost[i]), post[token * n + i], 1e-10);
                for (var j = 0; j < n; j++)
                    logits[i, j] = alphaRes * proj[2 * n + i * n + j] + biasRes[i * n + j];
            }
            var expectedRes = Reference.Sinkhorn(logits, 20);
            for (var i = 0; i < n; i++)
                for (var j = 0; j < n; j++)
                    Assert.Equal(expectedRes[i, j], res[(token * n + i) * n + j], 1e-10);
        }
    }

    [Fact]
    public void Manifold_coefficients_are_in_range_and_read_every_stream()
    {
        manual_seed(31);
        const int n = 4;
        using var connection = ConnectionFixture.Create(ConnectionKind.Manifold, n);
        Reference.Randomize(connection, 1.0);
        using var x = ConnectionFixture.State(n);
        using var m = connection.Coefficients(x);
        Assert.All(Reference.Values(m.Pre), p => Assert.InRange(p, 1e-12, 1 - 1e-12));
        Assert.All(Reference.Values(m.Post), p => Assert.InRange(p, 1e-12, 2 - 1e-12));
        var res = Reference.Values(m.Res);
        Assert.All(res, r => Assert.True(r >= 0));
        for (var row = 0; row < Tokens * n; row++)
            Assert.Equal(1.0, res.AsSpan(row * n, n).ToArray().Sum(), 1e-9);

        // Changing stream 0 alone must change every coefficient of every token: the projection reads vec(x).
        using var changed = x.clone();
        using (no_grad())
            changed.select(2, 0).add_(randn_like(changed.select(2, 0)));
        using var m2 = connection.Coefficients(changed);
        foreach (var (a, b) in new[] { (m.Pre, m2.Pre), (m.Post, m2.Post), (m.Res, m2.Res) })
        {
            var before = Reference.Values(a);
            var after = Reference.Values(b);
            for (var i = 0; i < before.Length; i++)
                Assert.True(Math.Abs(before[i] - after[i]) > 1e-12, $"coefficient {i} did not change");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Dynamic_hyper_connection_coefficients_follow_the_per_stream_formula(bool useTanh)
    {
        manual_seed(32);
        const int n = 3;
        var d = ConnectionFixture.D;
        using var connection = ConnectionFixture.Create(ConnectionKind.HyperDynamic, n, useTanh: useTanh);
        Reference.Randomize(connection, 0.5);
        using var x = ConnectionFixture.State(n);
        using var m = connection.Coefficients(x);

        var staticAlpha = Reference.Values(Reference.Parameter(connection, "static_alpha"));    // [n, n + 1]
        var staticBeta = Reference.Values(Reference.Parameter(connection, "static_beta"));      // [n]
        var dynamicAlpha = Reference.Values(Reference.Parameter(connection, "dynamic_alpha"));  // [d, n + 1]
        var dynamicBeta = Reference.Values(Reference.Parameter(connection, "dynamic_beta"));    // [d]
        var sAlpha = Reference.Values(Reference.Parameter(connection, "alpha_scale")).Single();
        var sBeta = Reference.Values(Reference.Parameter(connection, "beta_scale")).Single();
        var gamma = Reference.Values(Reference.Parameter(connection, "norm.weight"));
        var shift = Reference.Values(Reference.Parameter(connection, "norm.bias"));
        var xs = Reference.Values(x);
        var pre = Reference.Values(m.Pre);
        var post = Reference.Values(m.Post);
        var res = Reference.Values(m.Res);
        Func<double, double> squash = useTanh ? Math.Tanh : v => v;

        for (var token = 0; token < Tokens; token++)
        {
            var alpha = new double[n, n + 1];   // row i = [Am_i | Ar_i·] from stream i
            var beta = new double[n];
            for (var i = 0; i < n; i++)
            {
                var row = xs.AsSpan((token * n + i) * d, d).ToArray();
                var mean = row.Average();
                var variance = row.Sum(e => (e - mean) * (e - mean)) / d;
                var normed = row.Select((e, c) => (e - mean) / Math.Sqrt(variance + 1e-5) * gamma[c] + shift[c]).ToArray();
                for (var k = 0; k <= n; k++)
                {
                    var dot = 0.0;
                    for (var c = 0; c < d; c++) dot += normed[c] * dynamicAlpha[c * (n + 1) + k];
                    alpha[i, k] = sAlpha * squash(dot) + staticAlpha[i * (n + 1) + k];
                }
                var dotBeta = 0.0;
                for (var c = 0; c < d; c++) dotBeta += normed[c] * dynamicBeta[c];
                beta[i] = sBeta * squash(dotBeta) + staticBeta[i];
            }
            for (var i = 0; i < n; i++)
            {
                Assert.Equal(alpha[i, 0], pre[token * n + i], 1e-10);
                Assert.Equal(beta[i], post[token * n + i], 1e-10);
                // Applied as Arᵀ: output stream i takes Ar_ji from input stream j.
                for (var j = 0; j < n; j++)
                    Assert.Equal(alpha[j, 1 + i], res[(token * n + i) * n + j], 1e-10);
            }
        }
    }
}
