using Mhc.Connections;
using static TorchSharp.torch;

namespace Mhc.Tests;

public class BadInputTests
{
    static string MessageOf(Action action) => Assert.Throws<ArgumentException>(action).Message;

    [Theory]
    [InlineData(ConnectionKind.Manifold, 4)]
    [InlineData(ConnectionKind.HyperDynamic, 4)]
    [InlineData(ConnectionKind.Residual, 1)]
    public void Wrong_state_shapes_are_named(ConnectionKind kind, int n)
    {
        using var connection = ConnectionFixture.Create(kind, n);
        var d = ConnectionFixture.D;
        using var rank3 = zeros([2, 3, d], ScalarType.Float64);
        Assert.Contains("rank 3", MessageOf(() => connection.call(rank3)), StringComparison.Ordinal);
        using var streams = zeros([2, 3, n + 1, d], ScalarType.Float64);
        Assert.Contains($"{n + 1} streams instead of n = {n}", MessageOf(() => connection.call(streams)), StringComparison.Ordinal);
        using var width = zeros([2, 3, n, d + 2], ScalarType.Float64);
        Assert.Contains($"width {d + 2} instead of d = {d}", MessageOf(() => connection.Coefficients(width)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(ConnectionKind.Manifold, 0, "connection.streams = 0")]
    [InlineData(ConnectionKind.HyperStatic, -1, "connection.streams = -1")]
    [InlineData(ConnectionKind.Manifold, 1, "allowed 2..64")]
    [InlineData(ConnectionKind.Residual, 4, "connection.streams = 4 is out of range for kind = residual: allowed 1")]
    [InlineData(ConnectionKind.HyperDynamic, 65, "allowed 1..64")]
    public void Invalid_stream_counts_name_option_value_and_range(ConnectionKind kind, int streams, string expected)
    {
        var options = new ConnectionOptions { Kind = kind, Streams = streams };
        Assert.Contains(expected, MessageOf(options.Validate), StringComparison.Ordinal);
        Assert.Contains(expected, MessageOf(() => Connection.Create(options, 8, 0, new TestBranch(8))), StringComparison.Ordinal);
    }

    [Fact]
    public void Other_invalid_options_are_named()
    {
        Assert.Contains("connection.sinkhorn_iterations = -2", MessageOf(new ConnectionOptions { SinkhornIterations = -2 }.Validate), StringComparison.Ordinal);
        Assert.Contains("connection.gate_init = NaN", MessageOf(new ConnectionOptions { GateInit = double.NaN }.Validate), StringComparison.Ordinal);
        Assert.Contains("connection.use_tanh", MessageOf(new ConnectionOptions { Kind = ConnectionKind.Manifold, UseTanh = false }.Validate), StringComparison.Ordinal);
        Assert.Contains("exit_head = learned is invalid for kind = rmt", MessageOf(new ConnectionOptions { Kind = ConnectionKind.ResidualMatrix, ExitHead = ExitHead.Learned }.Validate), StringComparison.Ordinal);
        Assert.Contains("connection.kind = 99", MessageOf(new ConnectionOptions { Kind = (ConnectionKind)99 }.Validate), StringComparison.Ordinal);
        Assert.Contains("dModel = 0", MessageOf(() => Connection.Create(new ConnectionOptions(), 0, 0, new TestBranch(4))), StringComparison.Ordinal);
        Assert.Contains("sublayerIndex = -1", MessageOf(() => Connection.Create(new ConnectionOptions(), 4, -1, new TestBranch(4))), StringComparison.Ordinal);
        Assert.Contains("needs ConnectionOptions.Kind = Manifold; got Residual", MessageOf(() => { using var c = new ManifoldHyperConnection(ConnectionOptions.Residual, 4, 0, new TestBranch(4)); }), StringComparison.Ordinal);
    }

    [Fact]
    public void Streams_helpers_reject_wrong_ranks_and_counts()
    {
        using var state = zeros(2, 3, 4);
        Assert.Contains("n = 0", MessageOf(() => Streams.Expand(state, 0)), StringComparison.Ordinal);
        using var flat = zeros(2, 3);
        Assert.Contains("rank 2", MessageOf(() => Streams.Expand(flat, 4)), StringComparison.Ordinal);
        Assert.Contains("rank 3", MessageOf(() => Streams.Collapse(state)), StringComparison.Ordinal);
    }
}
