using static TorchSharp.torch;

namespace Mhc.Kernels;

/// <summary>
/// Dynamic HC's parameters as the fused kernels read them (<see cref="HyperConnectionKernels"/>), or their gradients in
/// the same places: <c>dynamic_alpha = [W_m | W_r]</c> <c>[d, n + 1]</c>, <c>dynamic_beta = W_β</c> <c>[d]</c>, the
/// per-stream LayerNorm's weight and bias <c>[d]</c>, <c>static_alpha = [Am | Ar]</c> <c>[n, n + 1]</c>,
/// <c>static_beta = B</c> <c>[n]</c> and the gates s_α, s_β (scalars).
/// </summary>
sealed record HyperParameters(Tensor DynamicAlpha, Tensor DynamicBeta, Tensor NormWeight, Tensor NormBias,
    Tensor StaticAlpha, Tensor StaticBeta, Tensor AlphaScale, Tensor BetaScale)
{
    /// <summary>Every tensor, for device and type checks and for pairing parameters with their gradients.</summary>
    public IReadOnlyList<Tensor> All => [DynamicAlpha, DynamicBeta, NormWeight, NormBias, StaticAlpha, StaticBeta, AlphaScale, BetaScale];
}
