using BenchmarkDotNet.Attributes;
using Mhc.Connections;
using static TorchSharp.torch;

namespace Mhc.Bench;

/// <summary>
/// One connection's own work for a sub-layer at R1 (2,048 tokens, n = 4, d = 512), forward and backward,
/// around an identity branch so that only the connection is timed: for mHC the RMS, the [n·d, n² + 2n]
/// projection, sigmoids, Sinkhorn and both passes over the state; for HC its LayerNorm/tanh coefficients
/// and the same passes. Reference path (one op per term, autograd) against the fused path.
/// </summary>
public class ConnectionBenchmarks
{
    [Params(ConnectionKind.Manifold, ConnectionKind.HyperDynamic)]
    public ConnectionKind Kind { get; set; }

    Connection reference = null!, fused = null!;
    Tensor x = null!, gOut = null!;

    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(2);
        manual_seed(0);
        reference = Connection.Create(new ConnectionOptions { Kind = Kind, Fused = false }, 512, 0, nn.Identity());
        fused = Connection.Create(new ConnectionOptions { Kind = Kind }, 512, 0, nn.Identity());
        x = randn(8, 256, 4, 512);
        gOut = randn_like(x);
    }

    [Benchmark(Baseline = true)]
    public void ReferenceForwardBackward() => ForwardBackward(reference);

    [Benchmark]
    public void FusedForwardBackward() => ForwardBackward(fused);

    void ForwardBackward(Connection connection)
    {
        using var scope = NewDisposeScope();
        var input = x.detach().requires_grad_(true);
        connection.call(input).backward([gOut]);
        connection.zero_grad();
    }
}
