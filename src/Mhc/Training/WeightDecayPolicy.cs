using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>
/// Which parameters AdamW decays: weight matrices only. Not norms, biases, scalar gates, mHC's
/// <c>bias_res</c> matrix, nor HC's static <c>static_alpha</c> / <c>static_beta</c> (the HC authors report
/// NaNs when those are decayed).
/// </summary>
public static class WeightDecayPolicy
{
    /// <summary>True when the parameter called <paramref name="name"/> gets weight decay.</summary>
    /// <param name="name">Dotted parameter name (<c>blocks.0.attn_conn.phi</c>).</param>
    /// <param name="parameter">The parameter.</param>
    public static bool IsDecayed(string name, Tensor parameter)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(parameter);
        var leaf = name[(name.LastIndexOf('.') + 1)..];
        return parameter.dim() >= 2
            && !leaf.StartsWith("static_", StringComparison.Ordinal)
            && !leaf.StartsWith("bias", StringComparison.Ordinal);
    }
}
