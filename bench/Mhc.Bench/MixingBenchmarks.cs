using BenchmarkDotNet.Attributes;
using Mhc.Kernels;
using static TorchSharp.torch;

namespace Mhc.Bench;

/// <summary>
/// The passes over the stream state at R1 (2,048 tokens, n = 4, d = 512): reading the branch input and
/// writing <c>H_res·x + H_post ⊗ y</c>, as reference tensor ops (batched matmuls, broadcasts) and as the
/// fused one-pass kernels, forward and backward.
/// </summary>
public class MixingBenchmarks
{
    Tensor x = null!, pre = null!, post = null!, res = null!, y = null!, gout = null!, gu = null!;

    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(2);
        manual_seed(0);
        x = randn(8, 256, 4, 512);
        pre = rand(8, 256, 4);
        post = rand(8, 256, 4);
        res = rand(8, 256, 4, 4);
        y = randn(8, 256, 512);
        gout = randn_like(x);
        gu = randn_like(y);
    }

    [Benchmark(Baseline = true)]
    public void ReferenceReadWrite()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        pre.unsqueeze(-2).matmul(x).squeeze(-2);
        var output = res.matmul(x) + post.unsqueeze(-1) * y.unsqueeze(-2);
    }

    [Benchmark]
    public void KernelReadWrite()
    {
        using var scope = NewDisposeScope();
        StreamMixing.Read(x, pre);
        StreamMixing.Write(x, res, post, y);
    }

    [Benchmark]
    public void ReferenceReadWriteBackward()
    {
        using var scope = NewDisposeScope();
        var (xr, pr, rr, por, yr) = (x.detach().requires_grad_(true), pre.detach().requires_grad_(true), res.detach().requires_grad_(true), post.detach().requires_grad_(true), y.detach().requires_grad_(true));
        var u = pr.unsqueeze(-2).matmul(xr).squeeze(-2);
        var output = rr.matmul(xr) + por.unsqueeze(-1) * yr.unsqueeze(-2);
        autograd.backward([output, u], [gout, gu]);
    }

    [Benchmark]
    public void KernelReadWriteBackward()
    {
        using var scope = NewDisposeScope();
        StreamMixing.WriteBackward(post, y, gout);
        StreamMixing.ReadBackward(x, pre, res, gu, gout);
    }
}
