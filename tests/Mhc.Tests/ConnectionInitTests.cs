using Mhc.Connections;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>At initialisation every scheme must be the Pre-Norm residual it generalises.</summary>
public class ConnectionInitTests
{
    [Theory]
    [MemberData(nameof(ConnectionFixture.KindsAndStreams), MemberType = typeof(ConnectionFixture))]
    public void With_identical_streams_every_kind_is_the_pre_norm_residual(ConnectionKind kind, int n)
    {
        manual_seed(10);
        using var connection = ConnectionFixture.Create(kind, n, sublayerIndex: 5);
        using var h = randn([2, 3, ConnectionFixture.D], ScalarType.Float64);
        using var x = Streams.Expand(h, n);
        using var output = connection.call(x);
        using var expected = h + connection.Branch.call(h);
        var o = Reference.Values(output);
        var e = Reference.Values(expected);
        var d = ConnectionFixture.D;
        for (var token = 0; token < 6; token++)
            for (var i = 0; i < n; i++)
                for (var c = 0; c < d; c++)
                    Assert.Equal(e[token * d + c], o[(token * n + i) * d + c], Tolerance(kind));
    }

    // mHC's b_pre = −ln(n − 1) is rounded to float32 when the parameter is created (its variants share it).
    static double Tolerance(ConnectionKind kind) => kind.IsManifold() ? 1e-7 : 1e-12;

    [Theory]
    [InlineData(ConnectionKind.HyperStatic, 0)]
    [InlineData(ConnectionKind.HyperStatic, 6)]
    [InlineData(ConnectionKind.HyperDynamic, 1)]
    [InlineData(ConnectionKind.HyperDynamic, 7)]
    public void Hyper_connection_at_init_reads_stream_k_mod_n_and_adds_to_every_stream(ConnectionKind kind, int sublayer)
    {
        manual_seed(11);
        const int n = 4;
        var d = ConnectionFixture.D;
        using var connection = ConnectionFixture.Create(kind, n, sublayer);
        using var x = ConnectionFixture.State(n);
        using var output = connection.call(x);
        using var read = x.select(2, sublayer % n);                // x_{k mod n}: [B, T, d]
        using var branchOut = connection.Branch.call(read);
        var o = Reference.Values(output);
        var xs = Reference.Values(x);
        var f = Reference.Values(branchOut);
        for (var token = 0; token < 6; token++)
            for (var i = 0; i < n; i++)
                for (var c = 0; c < d; c++)
                {
                    var at = (token * n + i) * d + c;
                    Assert.Equal(xs[at] + f[token * d + c], o[at], 1e-12);
                }
    }

    [Theory]
    [InlineData(4, 0)]
    [InlineData(4, 6)]
    [InlineData(2, 3)]
    public void Manifold_init_matches_the_spec(int n, int sublayer)
    {
        using var connection = ConnectionFixture.Create(ConnectionKind.Manifold, n, sublayer);
        using var x = ConnectionFixture.State(n);
        using var m = connection.Coefficients(x);
        // Sub-layer k reads mostly stream k mod n; the others share the rest, so H_pre sums to 1 (spec §5.1).
        var pre = Reference.Values(m.Pre);
        for (var i = 0; i < pre.Length; i++)
            Assert.Equal(i % n == sublayer % n ? 0.9 : 0.1 / (n - 1), pre[i], 1e-7);
        Assert.All(Reference.Values(m.Post), p => Assert.Equal(1.0, p, 1e-12));
        // H_res leans to the identity without saturating: diagonal well above 1/n, off-diagonal > 0.
        var res = Reference.Matrix(Reference.Values(m.Res), 0, n);
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                Assert.True(i == j ? res[i, j] > 0.9 : res[i, j] > 1e-3, $"res[{i},{j}] = {res[i, j]}");
    }

    [Fact]
    public void Uniform_res_init_mixes_every_stream_evenly_and_is_still_the_residual()
    {
        const int n = 4;
        var options = new ConnectionOptions { Kind = ConnectionKind.Manifold, Streams = n, ResInit = ResInit.Uniform };
        using var connection = Connection.Create(options, ConnectionFixture.D, 0, new TestBranch(ConnectionFixture.D));
        connection.to(ScalarType.Float64);
        using var x = ConnectionFixture.State(n);
        using var m = connection.Coefficients(x);
        Assert.All(Reference.Values(m.Res), r => Assert.Equal(1.0 / n, r, 1e-12));
        using var h = randn([2, 3, ConnectionFixture.D], ScalarType.Float64);
        using var same = Streams.Expand(h, n);
        using var output = connection.call(same);
        using var expected = h + connection.Branch.call(h);
        var o = Reference.Values(output);
        var e = Reference.Values(expected);
        for (var i = 0; i < o.Length; i++) Assert.Equal(e[i / (n * ConnectionFixture.D) * ConnectionFixture.D + i % ConnectionFixture.D], o[i], 1e-7);
        Assert.Throws<ArgumentException>(() => new ConnectionOptions { Kind = ConnectionKind.HyperDynamic, ResInit = ResInit.Uniform }.Validate());
    }
}
