namespace Mhc.Connections;

/// <summary>The residual schemes a <see cref="Connection"/> can implement.</summary>
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
}
