using BenchmarkDotNet.Attributes;
using Mhc.Connections;
using Mhc.Cli.Benchmarks;
using static TorchSharp.torch;

namespace Mhc.Bench;

/// <summary>
/// The connections of a whole R1 or R2 model (16 sub-layers; R1: 2,048 tokens, d = 512; R2: 1,024 tokens,
/// d = 1024) around identity branches, forward and backward through <see cref="ConnectionChain"/>: what a
/// training step spends on its connections, including what one connection's benchmark cannot show, the
/// passes that meet between sub-layers. Residual (n = 1) is the baseline.
/// </summary>
public class ChainBenchmarks
{
    [Params("r1", "r2")]
    public string Preset { get; set; } = "r1";

    [Params(ConnectionKind.Residual, ConnectionKind.HyperDynamic, ConnectionKind.Manifold)]
    public ConnectionKind Kind { get; set; }

    List<Connection> chain = null!;
    Tensor x = null!, gOut = null!;

    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(2);
        manual_seed(0);
        var config = BenchConfig.Presets[Preset];
        var options = Kind == ConnectionKind.Residual ? ConnectionOptions.Residual : new ConnectionOptions { Kind = Kind };
        chain = Enumerable.Range(0, 2 * config.Layers).Select(k => Connection.Create(options, config.DModel, k, nn.Identity())).ToList();
        x = randn(config.Batch, config.Seq, options.Streams, config.DModel);
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
