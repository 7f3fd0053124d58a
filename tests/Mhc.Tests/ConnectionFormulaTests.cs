using Mhc.Connections;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>
/// With random parameters, forward must apply exactly the coefficients <c>Coefficients</c> reports:
/// <c>out_i = Σ_j Res_ij x_j + Post_i · F(Σ_j Pre_j x_j)</c>, recomputed here by loops.
/// </summary>
public class ConnectionFormulaTests
{
    [Theory]
    [MemberData(nameof(ConnectionFixture.KindsAndStreams), MemberType = typeof(ConnectionFixture))]
    public void Forward_applies_exactly_the_reported_coefficients(ConnectionKind kind, int n)
    {
        manual_seed(20);
        var d = ConnectionFixture.D;
        using var connection = ConnectionFixture.Create(kind, n, sublayerIndex: 2);
        Reference.Randomize(connection, 0.5);
        using var x = ConnectionFixture.State(n);
        using var output = connection.call(x);
        using var m = connection.Coefficients(x);
        var xs = Reference.Values(x);
        var pre = Reference.Values(m.Pre);
        var post = Reference.Values(m.Post);
        var res = Reference.Values(m.Res);
        var o = Reference.Values(output);
        Assert.Equal([2L, 3, n], m.Pre.shape);
        Assert.Equal([2L, 3, n], m.Post.shape);
        Assert.Equal([2L, 3, n, n], m.Res.shape);

        // u = Σ_j Pre_j x_j per token, by loops; then the branch on those inputs.
        var u = new double[6 * d];
        for (var token = 0; token < 6; token++)
            for (var j = 0; j < n; j++)
                for (var c = 0; c < d; c++)
                    u[token * d + c] += pre[token * n + j] * xs[(token * n + j) * d + c];
        using var uTensor = tensor(u, [2, 3, d]);
        using var yTensor = connection.Branch.call(uTensor);
        var y = Reference.Values(yTensor);

        var resDistance = 0.0;
        for (var token = 0; token < 6; token++)
            for (var i = 0; i < n; i++)
            {
                for (var j = 0; j < n; j++)
                    resDistance = Math.Max(resDistance, Math.Abs(res[(token * n + i) * n + j] - (i == j ? 1 : 0)));
                for (var c = 0; c < d; c++)
                {
                    var expected = post[token * n + i] * y[token * d + c];
                    for (var j = 0; j < n; j++)
                        expected += res[(token * n + i) * n + j] * xs[(token * n + j) * d + c];
                    Assert.Equal(expected, o[(token * n + i) * d + c], 1e-10);
                }
            }
        // H_res is far from the identity here, so a scheme that skipped it could not pass.
        if (n > 1) Assert.True(resDistance > 0.05, $"max |Res − I| = {resDistance}");
    }

    [Theory]
    [MemberData(nameof(ConnectionFixture.KindsAndStreams), MemberType = typeof(ConnectionFixture))]
    public void Every_parameter_gets_a_non_zero_gradient(ConnectionKind kind, int n)
    {
        manual_seed(21);
        using var connection = ConnectionFixture.Create(kind, n, sublayerIndex: 1);
        Reference.Randomize(connection, 0.5);
        using var x = ConnectionFixture.State(n).requires_grad_(true);
        using var weights = randn_like(x);
        using (var loss = (connection.call(x) * weights).sum())
            loss.backward();
        var names = new List<string>();
        foreach (var (name, p) in connection.named_parameters())
        {
            names.Add(name);
            Assert.NotNull(p.grad);
            Assert.True(Reference.Values(p.grad!).Max(Math.Abs) > 1e-8, $"{kind}: parameter {name} got a zero gradient");
        }
        Assert.Contains(names, s => s.StartsWith("branch.", StringComparison.Ordinal));
        Assert.True(Reference.Values(x.grad!).Max(Math.Abs) > 1e-8);
    }

    [Fact]
    public void Static_hyper_connection_owns_only_static_parameters_and_residual_none()
    {
        using var hc = ConnectionFixture.Create(ConnectionKind.HyperStatic, 4);
        Assert.Equal(["static_alpha", "static_beta"],
            hc.named_parameters().Select(p => p.name).Where(s => !s.StartsWith("branch.", StringComparison.Ordinal)).Order());
        using var residual = ConnectionFixture.Create(ConnectionKind.Residual, 1);
        Assert.All(residual.named_parameters(), p => Assert.StartsWith("branch.", p.name, StringComparison.Ordinal));
    }
}
