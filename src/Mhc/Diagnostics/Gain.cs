using static TorchSharp.torch;

namespace Mhc.Diagnostics;

/// <summary>
/// The mHC paper's Amax Gain Magnitude (spec §7): how much a mixing matrix can amplify a signal going
/// forward (largest absolute row sum) or a gradient going backward (largest absolute column sum).
/// The absolute value is taken of the sum, not of the entries.
/// </summary>
public static class Gain
{
    /// <summary>Forward gain <c>max_i |Σ_j M_ij|</c> over the last two dims; leading dims are kept.</summary>
    /// <param name="m">Matrices <c>[..., n, n]</c> (row i = output i).</param>
    public static Tensor Forward(Tensor m)
    {
        CheckMatrices(m, nameof(Forward));
        using var sums = m.sum(-1);
        using var magnitude = sums.abs();
        return magnitude.amax([-1]);
    }

    /// <summary>Backward gain <c>max_j |Σ_i M_ij|</c> over the last two dims; leading dims are kept.</summary>
    /// <param name="m">Matrices <c>[..., n, n]</c> (row i = output i).</param>
    public static Tensor Backward(Tensor m)
    {
        CheckMatrices(m, nameof(Backward));
        using var sums = m.sum(-2);
        using var magnitude = sums.abs();
        return magnitude.amax([-1]);
    }

    /// <summary>
    /// Composite mappings from each sub-layer to the end of the network: element k is
    /// <c>res[L−1] · … · res[k+1] · res[k]</c>, the map from the state entering sub-layer k to the final state.
    /// </summary>
    /// <param name="res">H_res of sub-layers 0..L−1 (row i = output i), each <c>[..., n, n]</c> with broadcastable leading dims.</param>
    public static IReadOnlyList<Tensor> Composite(IReadOnlyList<Tensor> res)
    {
        ArgumentNullException.ThrowIfNull(res);
        var result = new Tensor[res.Count];
        for (var k = res.Count - 1; k >= 0; k--)
        {
            CheckMatrices(res[k], nameof(Composite));
            result[k] = k == res.Count - 1 ? res[k].alias() : result[k + 1].matmul(res[k]);
        }
        return result;
    }

    static void CheckMatrices(Tensor m, string method)
    {
        ArgumentNullException.ThrowIfNull(m);
        if (m.dim() < 2 || m.size(-1) != m.size(-2))
            throw new ArgumentException($"Gain.{method} expects square matrices [..., n, n]; got [{string.Join(", ", m.shape)}].", nameof(m));
    }
}
