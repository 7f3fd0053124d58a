using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Models;

/// <summary>RMSNorm over the last dimension with a learnable gain (TorchSharp 0.107 has none built in).</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly double eps;

    /// <summary>Creates the norm for width <paramref name="dim"/>; the gain starts at 1.</summary>
    /// <param name="dim">Size of the normalised (last) dimension.</param>
    /// <param name="eps">Added to the mean square before the square root.</param>
    public RmsNorm(long dim, double eps = 1e-6) : base("rms_norm")
    {
        weight = new Parameter(ones(dim));
        this.eps = eps;
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var inverseRms = x.square().mean([-1], keepdim: true).add(eps).rsqrt();
        return (x * inverseRms * weight).MoveToOuterDisposeScope();
    }
}
