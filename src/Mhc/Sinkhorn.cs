using TorchSharp;
using static TorchSharp.torch;

namespace Mhc;

/// <summary>Options of <see cref="Sinkhorn.Project(Tensor, SinkhornOptions)"/>.</summary>
public sealed record SinkhornOptions
{
    /// <summary>Maximum number of (column, row) normalisation pairs; the mHC paper uses 20.</summary>
    public int Iterations { get; init; } = 20;

    /// <summary>
    /// Early stop: when positive, iteration stops once every column sum is within this distance of 1
    /// (rows are exact after each iteration). Checking costs one host synchronisation per iteration.
    /// 0 (the default) always runs <see cref="Iterations"/> iterations, as the paper does.
    /// </summary>
    public double Tolerance { get; init; }

    /// <summary>
    /// Iterate on log-values (normalisation by logsumexp) instead of values. Same algorithm, always
    /// finite; slower. Without it the projection still switches to the log domain by itself for a
    /// call whose logit spread would underflow <c>exp</c>.
    /// </summary>
    public bool LogDomain { get; init; }

    /// <summary>
    /// DeepSeek-V4's arithmetic when positive (it uses 1e-6): the first normalisation is a softmax, ε is added to each of
    /// its entries and to every later denominator. 0 (the default) is the paper's projection. With ε &gt; 0 the
    /// iteration runs on values (the softmax keeps them finite); <see cref="LogDomain"/> does not apply.
    /// </summary>
    public double Epsilon { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (Iterations < 1 || Iterations > 10_000)
            throw new ArgumentException($"SinkhornOptions.Iterations = {Iterations} is out of range: allowed 1..10000.", nameof(Iterations));
        if (!double.IsFinite(Tolerance) || Tolerance < 0)
            throw new ArgumentException($"SinkhornOptions.Tolerance = {Tolerance} is out of range: allowed a finite number >= 0 (0 = no early stop).", nameof(Tolerance));
        if (!double.IsFinite(Epsilon) || Epsilon < 0 || Epsilon >= 1)
            throw new ArgumentException($"SinkhornOptions.Epsilon = {Epsilon} is out of range: allowed [0, 1) (0 = the paper's projection).", nameof(Epsilon));
    }
}

/// <summary>
/// Sinkhorn-Knopp projection of square logit matrices onto the Birkhoff polytope (doubly stochastic
/// matrices), as mHC applies it to H_res (mHC paper §4; spec §6).
/// </summary>
public static class Sinkhorn
{
    /// <summary>
    /// Projects every trailing <c>[n, n]</c> matrix of <paramref name="logits"/>: <c>M = exp(L - max L)</c>,
    /// then <paramref name="iterations"/> times normalise columns, then rows. Rows sum to 1 exactly
    /// (forward gain 1); the truncation error lands in the column sums. Differentiable through every
    /// iteration. Finite for any finite logits.
    /// </summary>
    /// <param name="logits">Tensor of shape <c>[..., n, n]</c>, floating point.</param>
    /// <param name="iterations">Number of (column, row) normalisation pairs, at least 1.</param>
    /// <returns>A tensor of the same shape and dtype.</returns>
    public static Tensor Project(Tensor logits, int iterations = 20) =>
        Project(logits, new SinkhornOptions { Iterations = iterations });

    /// <summary>Projects with explicit <see cref="SinkhornOptions"/> (early stop, log domain).</summary>
    /// <param name="logits">Tensor of shape <c>[..., n, n]</c>, floating point.</param>
    /// <param name="options">Iteration count, tolerance and domain.</param>
    /// <returns>A tensor of the same shape and dtype, each matrix doubly stochastic.</returns>
    public static Tensor Project(Tensor logits, SinkhornOptions options)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (logits.dim() < 2 || logits.size(-1) != logits.size(-2) || logits.size(-1) < 1)
            throw new ArgumentException($"Sinkhorn.Project expects logits of shape [..., n, n] with n >= 1; got [{string.Join(", ", logits.shape)}].", nameof(logits));
        if (!logits.is_floating_point())
            throw new ArgumentException($"Sinkhorn.Project expects floating-point logits; got {logits.dtype}.", nameof(logits));

        using var scope = NewDisposeScope();
        // Half-precision inputs are projected in float32 (coefficient math is fp32 in mHC).
        var work = logits.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? logits.to(ScalarType.Float32) : logits;
        // Shifting by the per-matrix max changes nothing mathematically and keeps exp <= 1.
        var shifted = work - work.amax([-2, -1], keepdim: true);
        var useLog = options.Epsilon == 0 && (options.LogDomain || (-shifted).max().ToDouble() > SafeSpread(work.dtype == ScalarType.Float64));
        var result = useLog ? IterateLog(shifted, options) : options.Epsilon > 0 ? IterateWithEpsilon(shifted, options) : IterateExp(shifted, options);
        return result.to(logits.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Largest logit spread for which exp-domain iteration stays accurate: every iterate entry is at
    /// least e^(-2·spread)/n (column scalings differ by at most the kernel's dynamic range), which must
    /// stay far above the smallest normal number of the dtype.
    /// </summary>
    internal static double SafeSpread(bool float64) => float64 ? 300 : 30;

    static Tensor IterateExp(Tensor shifted, SinkhornOptions options)
    {
        var m = shifted.exp();
        for (var t = 0; t < options.Iterations; t++)
        {
            m = m / m.sum(-2, keepdim: true);
            m = m / m.sum(-1, keepdim: true);
            if (Converged(m, options)) break;
        }
        return m;
    }

    // DeepSeek-V4's form (their sinkhorn_normalize_ref, in our orientation: dim −2 is their last index): the first column
    // normalisation is a softmax plus ε, every denominator after it gets + ε.
    static Tensor IterateWithEpsilon(Tensor shifted, SinkhornOptions options)
    {
        var eps = options.Epsilon;
        var m = shifted.softmax(-2) + eps;
        m = m / (m.sum(-1, keepdim: true) + eps);
        for (var t = 1; t < options.Iterations; t++)
        {
            m = m / (m.sum(-2, keepdim: true) + eps);
            m = m / (m.sum(-1, keepdim: true) + eps);
            if (Converged(m, options)) break;
        }
        return m;
    }

    static Tensor IterateLog(Tensor shifted, SinkhornOptions options)
    {
        var logM = shifted;
        for (var t = 0; t < options.Iterations; t++)
        {
            logM = logM - logM.logsumexp(-2, keepdim: true);
            logM = logM - logM.logsumexp(-1, keepdim: true);
            if (options.Tolerance > 0 && Converged(logM.exp(), options)) break;
        }
        return logM.exp();
    }

    static bool Converged(Tensor rowNormalised, SinkhornOptions options)
    {
        if (options.Tolerance <= 0) return false;
        using var _ = NewDisposeScope();
        using var noGrad = no_grad();
        return (rowNormalised.sum(-2) - 1).abs().max().ToDouble() <= options.Tolerance;
    }
}
