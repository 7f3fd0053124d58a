namespace Mhc.Connections;

/// <summary>The residual schemes a <see cref="Connection"/> can implement (docs/connections.md has one section per kind).</summary>
public enum ConnectionKind
{
    /// <summary>Pre-Norm residual <c>x + F(x)</c>: one stream, no mixing (spec §3).</summary>
    Residual,

    /// <summary>Hyper-Connections with static (learned, input-independent) mixing only (HC paper, spec §4).</summary>
    HyperStatic,

    /// <summary>Hyper-Connections with static plus dynamic (input-dependent, tanh-gated) mixing (spec §4).</summary>
    HyperDynamic,

    /// <summary>Manifold-constrained Hyper-Connections: H_res doubly stochastic, H_pre, H_post non-negative (spec §5).</summary>
    Manifold,

    /// <summary>mHC with input-independent coefficients: the biases only, no projection φ; H_res still projected by Sinkhorn.</summary>
    ManifoldStatic,

    /// <summary>
    /// mHC-lite (arXiv 2601.05732): H_res = Σ_k softmax(w(x))_k P_k over the n! permutation matrices, exactly doubly
    /// stochastic with no Sinkhorn iterations; H_pre and H_post as mHC.
    /// </summary>
    ManifoldLite,

    /// <summary>The mHC paper's ablation (its Table 1): only H_res learned; H_pre = 1/n and H_post = 1 fixed.</summary>
    ManifoldResOnly,

    /// <summary>The mHC paper's ablation: H_res and H_pre learned; H_post = 1 fixed.</summary>
    ManifoldResPre,

    /// <summary>
    /// Residual Matrix Transformer (Mak &amp; Flanigan, arXiv 2506.22696): each token's residual stream is a D_k × D_v outer-product
    /// memory; sub-layers read it with key vectors and write outer products (docs/connections.md).
    /// </summary>
    ResidualMatrix,

    /// <summary>
    /// MUDDFormer (Xiao et al., arXiv 2502.12170): every block's query, key, value and residual inputs are position-dependent
    /// weighted sums of all earlier blocks' outputs (docs/connections.md).
    /// </summary>
    MultiwayDense,
}

/// <summary>Families of <see cref="ConnectionKind"/>.</summary>
public static class ConnectionKinds
{
    /// <summary>Whether <paramref name="kind"/> is mHC or one of its variants (a doubly stochastic H_res, non-negative H_pre, H_post).</summary>
    public static bool IsManifold(this ConnectionKind kind) =>
        kind is ConnectionKind.Manifold or ConnectionKind.ManifoldStatic or ConnectionKind.ManifoldLite or ConnectionKind.ManifoldResOnly or ConnectionKind.ManifoldResPre;
}
