using BenchmarkDotNet.Attributes;
using Mhc.Kernels;
using static TorchSharp.torch;

namespace Mhc.Bench;

/// <summary>
/// Sinkhorn projection of one sub-layer's H_res logits at R1's token count (8 × 256), n = 4, 20 iterations:
/// the reference (one tensor op per normalisation, autograd through every iteration) against the fused
/// kernel on one thread (a token per SIMD lane, 16 per 512-bit vector with AVX-512; backward recomputes the
/// iterations).
/// </summary>
public class SinkhornBenchmarks
{
    Tensor logits = null!;
    Tensor grad = null!;
    Tensor output = null!;

    [Params(2048)]
    public int Tokens { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(2);
        manual_seed(0);
        logits = randn(Tokens, 4, 4) * 0.1 - 4 * (1 - eye(4));
        grad = randn(Tokens, 4, 4);
        using var _ = no_grad();
        output = Sinkhorn.Project(logits);
    }

    [Benchmark(Baseline = true)]
    public void ReferenceForward()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Sinkhorn.Project(logits);
    }

    [Benchmark]
    public void ReferenceForwardBackward()
    {
        using var scope = NewDisposeScope();
        var input = logits.detach().requires_grad_(true);
        Sinkhorn.Project(input).backward([grad]);
    }

    [Benchmark]
    public void KernelForward() =>
        SinkhornKernel.Forward<float>(CpuTensor.Span<float>(logits), CpuTensor.Span<float>(output), Tokens, 4, 20);

    [Benchmark]
    public void KernelBackward() =>
        SinkhornKernel.Backward<float>(CpuTensor.Span<float>(logits), CpuTensor.Span<float>(grad), CpuTensor.Span<float>(output), Tokens, 4, 20);
}
