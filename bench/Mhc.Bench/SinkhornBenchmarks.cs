using BenchmarkDotNet.Attributes;
using static TorchSharp.torch;

namespace Mhc.Bench;

/// <summary>Sinkhorn projection of one sub-layer's H_res logits at a realistic token count (R1: 8 × 256 tokens).</summary>
public class SinkhornBenchmarks
{
    Tensor logits = null!;

    [Params(2048)]
    public int Tokens { get; set; }

    [Params(4)]
    public int Streams { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(2);
        manual_seed(0);
        logits = randn(Tokens, Streams, Streams) * 0.1 - 4 * (1 - eye(Streams));
    }

    [Benchmark]
    public void Forward()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Sinkhorn.Project(logits);
    }

    [Benchmark]
    public void ForwardBackward()
    {
        using var scope = NewDisposeScope();
        var input = logits.detach().requires_grad_(true);
        Sinkhorn.Project(input).square().sum().backward();
    }
}
