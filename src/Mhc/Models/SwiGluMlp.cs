using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Models;

/// <summary>
/// The MLP branch F(u) = W2(silu(W1·RMSNorm(u)) ⊙ W3·RMSNorm(u)) (SwiGLU, with its own pre-norm).
/// Maps <c>[B, T, d]</c> to <c>[B, T, d]</c>.
/// </summary>
public sealed class SwiGluMlp : nn.Module<Tensor, Tensor>
{
    readonly RmsNorm norm;
    readonly Linear gate;
    readonly Linear up;
    readonly Linear down;
    readonly Dropout dropout;

    /// <summary>Creates the branch.</summary>
    /// <param name="dModel">Model width d.</param>
    /// <param name="hidden">Hidden width; 0 picks <see cref="DefaultHidden"/>.</param>
    /// <param name="dropout">Dropout on the branch output while training.</param>
    public SwiGluMlp(int dModel, int hidden, double dropout) : base("mlp")
    {
        hidden = hidden > 0 ? hidden : DefaultHidden(dModel);
        norm = new RmsNorm(dModel);
        gate = nn.Linear(dModel, hidden, hasBias: false);
        up = nn.Linear(dModel, hidden, hasBias: false);
        down = nn.Linear(hidden, dModel, hasBias: false);
        this.dropout = nn.Dropout(dropout);
        RegisterComponents();
    }

    /// <summary>8d/3 rounded up to a multiple of 8: the parameter count of a 4d GELU MLP.</summary>
    /// <param name="dModel">Model width d.</param>
    public static int DefaultHidden(int dModel) => (8 * dModel / 3 + 7) / 8 * 8;

    /// <summary>The output projection, whose initial scale depends on depth.</summary>
    public Linear OutputProjection => down;

    /// <inheritdoc/>
    public override Tensor forward(Tensor u)
    {
        using var scope = NewDisposeScope();
        var h = norm.call(u);
        var activated = nn.functional.silu(gate.call(h)) * up.call(h);
        return dropout.call(down.call(activated)).MoveToOuterDisposeScope();
    }
}
