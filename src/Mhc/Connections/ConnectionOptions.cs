namespace Mhc.Connections;

/// <summary>
/// How a <see cref="Connection"/> is built. Immutable; validated in one place (<see cref="Validate"/>),
/// which every factory calls.
/// </summary>
public sealed record ConnectionOptions
{
    /// <summary>Largest stream count accepted (Sinkhorn and the mixing are tested up to 16; 64 leaves room).</summary>
    public const int MaxStreams = 64;

    /// <summary>Largest stream count of mHC-lite, whose H_res weighs n! permutation matrices (720 at n = 6).</summary>
    public const int MaxLiteStreams = 6;

    /// <summary>The residual scheme. Default <see cref="ConnectionKind.Manifold"/> (mHC).</summary>
    public ConnectionKind Kind { get; init; } = ConnectionKind.Manifold;

    /// <summary>Number of streams n (expansion rate). Default 4; must be 1 for <see cref="ConnectionKind.Residual"/>.</summary>
    public int Streams { get; init; } = 4;

    /// <summary>Sinkhorn-Knopp iterations for mHC's H_res (t_max, default 20).</summary>
    public int SinkhornIterations { get; init; } = 20;

    /// <summary>Initial value of the learnable gates: HC's s_α, s_β and mHC's α_pre, α_post, α_res (default 0.01).</summary>
    public double GateInit { get; init; } = 0.01;

    /// <summary>HC only: squash the dynamic terms with tanh (default true; the HC paper also reports a no-tanh variant).</summary>
    public bool UseTanh { get; init; } = true;

    /// <summary>
    /// Use the fused kernels (one pass over the stream state per mixing, Sinkhorn with a recomputing
    /// backward) where they apply: CPU tensors in float32 or float64. False keeps the reference path, one
    /// tensor operation per formula term with autograd through every Sinkhorn iteration. Same math.
    /// </summary>
    public bool Fused { get; init; } = true;

    /// <summary>
    /// Trade compute for memory on the fused path: keep only the stream state every L_r sub-layers and the
    /// branch outputs, and recompute the connections' intermediates in backward (mHC paper §4.3;
    /// L_r = round(√(n·L/(n + 2))), see <see cref="ConnectionChain.RecomputeSegment"/>). Same results.
    /// </summary>
    public bool Recompute { get; init; }

    /// <summary>mHC only: the paper's arithmetic (default) or DeepSeek-V4's (ε in H_pre and in Sinkhorn).</summary>
    public ManifoldDefinition Definition { get; init; } = ManifoldDefinition.Paper;

    /// <summary>mHC only: how the residual logits b_res start (identity-leaning by default, or uniform).</summary>
    public ResInit ResInit { get; init; } = ResInit.Identity;

    /// <summary>How the model leaves the streams: their sum (default) or DeepSeek-V4's learned weights (n ≥ 2). A model option, read by the models, not by each connection.</summary>
    public ExitHead ExitHead { get; init; } = ExitHead.Sum;

    /// <summary>Options for the baseline: one stream, plain Pre-Norm residual.</summary>
    public static ConnectionOptions Residual { get; } = new() { Kind = ConnectionKind.Residual, Streams = 1 };

    static double Factorial(int n) => Enumerable.Range(1, n).Aggregate(1.0, (a, b) => a * b);

    /// <summary>Throws <see cref="ArgumentException"/> naming the option, its value and the allowed range.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Kind))
            throw new ArgumentException($"connection.kind = {(int)Kind} is unknown: allowed {string.Join(", ", Enum.GetValues<ConnectionKind>().Select(k => k.ToName()))}.", nameof(Kind));
        var (minStreams, maxStreams) = Kind switch
        {
            ConnectionKind.Residual => (1, 1),
            // mHC-lite mixes n! permutation matrices: 720 at n = 6 is the most worth computing.
            ConnectionKind.ManifoldLite => (2, MaxLiteStreams),
            // H_pre = sigmoid(.) cannot reach 1, so mHC needs n >= 2 to start as an identity map.
            _ when Kind.IsManifold() => (2, MaxStreams),
            _ => (1, MaxStreams),
        };
        if (Kind == ConnectionKind.ManifoldLite && Streams > maxStreams)
            throw new ArgumentException($"connection.streams = {Streams} is out of range for kind = mhc-lite: it mixes n! permutation matrices ({Factorial(Streams):N0} at n = {Streams}); allowed 2..{MaxLiteStreams}.", nameof(Streams));
        if (Streams < minStreams || Streams > maxStreams)
            throw new ArgumentException(minStreams == maxStreams
                ? $"connection.streams = {Streams} is out of range for kind = {Kind.ToName()}: allowed {minStreams}."
                : $"connection.streams = {Streams} is out of range for kind = {Kind.ToName()}: allowed {minStreams}..{maxStreams}.", nameof(Streams));
        if (SinkhornIterations < 1 || SinkhornIterations > 10_000)
            throw new ArgumentException($"connection.sinkhorn_iterations = {SinkhornIterations} is out of range: allowed 1..10000.", nameof(SinkhornIterations));
        if (!float.IsFinite((float)GateInit) || GateInit < 0)
            throw new ArgumentException($"connection.gate_init = {GateInit} is out of range: allowed a finite float32 number >= 0.", nameof(GateInit));
        if (!Enum.IsDefined(Definition))
            throw new ArgumentException($"connection.definition = {(int)Definition} is unknown: allowed {string.Join(", ", Enum.GetValues<ManifoldDefinition>().Select(d => d.ToName()))}.", nameof(Definition));
        if (Definition != ManifoldDefinition.Paper && Kind != ConnectionKind.Manifold)
            throw new ArgumentException($"connection.definition = {Definition.ToName()} is invalid for kind = {Kind.ToName()}: it chooses mhc's arithmetic.", nameof(Definition));
        if (!Enum.IsDefined(ResInit))
            throw new ArgumentException($"connection.res_init = {(int)ResInit} is unknown: allowed {string.Join(", ", Enum.GetValues<ResInit>().Select(r => r.ToName()))}.", nameof(ResInit));
        if (ResInit != ResInit.Identity && !Kind.IsManifold())
            throw new ArgumentException($"connection.res_init = {ResInit.ToName()} is invalid for kind = {Kind.ToName()}: it sets mHC's b_res.", nameof(ResInit));
        if (!Enum.IsDefined(ExitHead))
            throw new ArgumentException($"connection.exit_head = {(int)ExitHead} is unknown: allowed {string.Join(", ", Enum.GetValues<ExitHead>().Select(e => e.ToName()))}.", nameof(ExitHead));
        if (ExitHead == ExitHead.Learned && Kind is ConnectionKind.ResidualMatrix or ConnectionKind.MultiwayDense)
            throw new ArgumentException($"connection.exit_head = learned is invalid for kind = {Kind.ToName()}: it weighs the n streams of HC and mHC, and {Kind.ToName()} leaves its state its own way.", nameof(ExitHead));
        if (ExitHead == ExitHead.Learned && Streams < 2)
            throw new ArgumentException($"connection.exit_head = learned is invalid for kind = {Kind.ToName()} with connection.streams = {Streams}: it weighs n >= 2 streams.", nameof(ExitHead));
        if (!UseTanh && Kind is not (ConnectionKind.HyperStatic or ConnectionKind.HyperDynamic))
            throw new ArgumentException($"connection.use_tanh = false is invalid for kind = {Kind.ToName()}: allowed only for hc-static and hc.", nameof(UseTanh));
    }
}
