using static TorchSharp.torch;

namespace Mhc.Kernels;

/// <summary>
/// mHC's parameters as the fused kernels read them (<see cref="ManifoldConnectionKernels"/>), or their gradients in the
/// same places: φ <c>[n·d, n² + 2n]</c>, the gates α_pre, α_post, α_res (scalars) and the biases b_pre <c>[n]</c>,
/// b_post <c>[n]</c>, b_res <c>[n, n]</c>.
/// </summary>
sealed record ManifoldParameters(Tensor Phi, Tensor AlphaPre, Tensor AlphaPost, Tensor AlphaRes, Tensor BiasPre, Tensor BiasPost, Tensor BiasRes)
{
    /// <summary>Every tensor, for device and type checks and for pairing parameters with their gradients.</summary>
    public IReadOnlyList<Tensor> All => [Phi, AlphaPre, AlphaPost, AlphaRes, BiasPre, BiasPost, BiasRes];
}
