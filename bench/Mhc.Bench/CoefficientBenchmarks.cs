using BenchmarkDotNet.Attributes;
using Mhc.Connections;
using static TorchSharp.torch;

namespace Mhc.Bench;

/// <summary>
/// mHC's coefficients for one sub-layer at R1 (2,048 tokens, n = 4, d = 512) — RMS, the [n·d, n² + 2n]
/// projection, sigmoids and Sinkhorn — forward and backward: the reference path (autograd through every
/// op and Sinkhorn iteration) against the fused one (kernel, in-place accumulation into the state gradient).
/// </summary>
public class CoefficientBenchmarks
{
    Connection connection = null!;
    Tensor x = null!, gPre = null!, gPost = null!, gRes = null!;

    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(2);
        manual_seed(0);
        connection = Connection.Create(new ConnectionOptions(), 512, 0, nn.Identity());
        x = randn(8, 256, 4, 512);
        gPre = randn(8, 256, 4);
        gPost = randn(8, 256, 4);
        gRes = randn(8, 256, 4, 4);
    }

    [Benchmark(Baseline = true)]
    public void ReferenceForwardBackward()
    {
        using var scope = NewDisposeScope();
        var input = x.detach().requires_grad_(true);
        using var m = connection.Coefficients(input);   // with gradients wanted, Coefficients takes the reference path
        autograd.backward([m.Pre, m.Post, m.Res], [gPre, gPost, gRes]);
    }

    [Benchmark]
    public void FusedForwardBackward()
    {
        using var scope = NewDisposeScope();
        using var c = connection.FusedCoefficients(x, withGraph: true);
        using var gx = zeros_like(x);
        c.Backward(x, gPre, gPost, gRes, gx);
    }
}
