using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// MUDDFormer's depth-wise aggregation (its DA module): from the newest slot x_(L−1) of a state holding L slots so far, per
/// token, weights <c>A = W2·GELU(W1·RMSNorm(x_(L−1))) + b</c> <c>[C, L]</c> for C ways (query, key, value, residual), and the
/// ways' inputs <c>X_c = Σ_j A_cj x_j</c>. The RMSNorm has no gain. W1 <c>[C·L, d]</c> starts N(0, 0.02), W2 at zero and the
/// static weights b at one on the newest slot, so every way starts as the newest slot alone: a Pre-Norm residual network.
/// </summary>
internal sealed class DenseAggregation : nn.Module
{
    const double NormEpsilon = 1e-6;

    readonly Linear w1;
    readonly Linear w2;
    readonly Parameter bias;   // [C·L], flat so weight decay leaves the static weights alone, as the other vectors

    /// <summary>Creates the aggregation of <paramref name="slots"/> slots into <paramref name="ways"/> ways.</summary>
    /// <param name="dModel">Slot width d.</param>
    /// <param name="ways">C.</param>
    /// <param name="slots">L, the slots 0..L−1 aggregated.</param>
    public DenseAggregation(int dModel, int ways, int slots) : base("dense")
    {
        Ways = ways;
        Slots = slots;
        var width = ways * slots;
        w1 = nn.Linear(dModel, width, hasBias: false);
        w2 = nn.Linear(width, width, hasBias: false);
        using (no_grad())
        {
            w1.weight!.normal_(0, 0.02);
            w2.weight!.zero_();
            var start = zeros(ways, slots);
            start[.., slots - 1] = tensor(1f);
            bias = new Parameter(start.flatten());
        }
        RegisterComponents();
    }

    /// <summary>C.</summary>
    public int Ways { get; }

    /// <summary>The static weights b, flat <c>[C·L]</c>.</summary>
    public Tensor StaticWeights => bias;

    /// <summary>L.</summary>
    public int Slots { get; }

    /// <summary>The weights <c>[B, T, C, L]</c> for state <paramref name="x"/> <c>[B, T, S ≥ L, d]</c>, read from slot L − 1.</summary>
    /// <param name="x">Stream state.</param>
    public Tensor Weights(Tensor x)
    {
        using var scope = NewDisposeScope();
        var newest = x.select(2, Slots - 1);
        var normed = newest * newest.square().mean([-1], keepdim: true).add(NormEpsilon).rsqrt();
        var dynamic = w2.call(nn.functional.gelu(w1.call(normed)));
        var weights = dynamic + bias.to(dynamic.dtype);
        return weights.unflatten(weights.dim() - 1, [Ways, Slots]).MoveToOuterDisposeScope();
    }

    /// <summary>The ways' inputs <c>[B, T, C, d]</c>: <paramref name="weights"/> <c>[B, T, C, L]</c> applied to slots 0..L−1 of <paramref name="x"/>.</summary>
    /// <param name="weights">From <see cref="Weights"/>.</param>
    /// <param name="x">Stream state (or a perturbation of it).</param>
    public Tensor Mix(Tensor weights, Tensor x)
    {
        using var slots = x.narrow(2, 0, Slots);
        using var w = weights.to(x.dtype);
        return w.matmul(slots);
    }
}
