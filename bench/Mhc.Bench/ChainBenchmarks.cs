using BenchmarkDotNet.Attributes;
using Mhc.Connections;
using static TorchSharp.torch;

namespace Mhc.Bench;

/// <summary>
/// The connections of a whole R1 model (16 sub-layers, 2,048 tokens, d = 512) around identity branches,
/// forward and backward through <see cref="ConnectionChain"/>: what a training step spends on its
/// connections, including what one connection's benchmark cannot show, the passes that meet between
/// sub-layers. Residual (n = 1) is the baseline.
/// </summary>
public class ChainBenchmarks
{
    const int SubLayers = 16;

    [Params(ConnectionKind.Residual, ConnectionKind.HyperDynamic, ConnectionKind.Manifold)]
    public ConnectionKind Kind { get; set; }

    List<Connection> chain = null!;
    Tensor x = null!, gOut = null!;

    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(2);
        manual_seed(0);
        var options = Kind == ConnectionKind.Residual ? ConnectionOptions.Residual : new ConnectionOptions { Kind = Kind };
        chain = Enumerable.Range(0, SubLayers).Select(k => Connection.Create(options, 512, k, nn.Identity())).ToList();
        x = randn(8, 256, options.Streams, 512);
        gOut = randn_like(x);
    }

    [Benchmark]
    public void ForwardBackward()
    {
        using var scope = NewDisposeScope();
        var input = x.detach().requires_grad_(true);
        ConnectionChain.Forward(chain, input).backward([gOut]);
        foreach (var connection in chain) connection.zero_grad();
    }
}
