using Mhc.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// Hyper-Connections (Zhu et al., ByteDance, arXiv 2409.19606), static or dynamic (spec §4).
/// Parameters follow the paper's names: the static matrix <c>static_alpha = [Am | Ar]</c> of shape
/// <c>[n, n + 1]</c> and <c>static_beta = B</c> of shape <c>[n]</c>; the dynamic variant adds
/// <c>dynamic_alpha = [W_m | W_r]</c> <c>[d, n + 1]</c>, <c>dynamic_beta = W_β</c> <c>[d]</c>, the gates
/// <c>alpha_scale</c>, <c>beta_scale</c> and a per-stream LayerNorm <c>norm</c>. Coefficients are signed
/// and unconstrained: this is the scheme whose products grow across depth.
/// </summary>
public sealed class HyperConnection : Connection
{
    /// <summary>ε of the per-stream LayerNorm of dynamic HC.</summary>
    public const double LayerNormEpsilon = 1e-5;

    readonly Parameter static_alpha;
    readonly Parameter static_beta;
    readonly LayerNorm? norm;
    readonly Parameter? dynamic_alpha;
    readonly Parameter? dynamic_beta;
    readonly Parameter? alpha_scale;
    readonly Parameter? beta_scale;

    /// <summary>
    /// Builds HC for sub-layer <paramref name="sublayerIndex"/>, initialised as a Pre-Norm residual:
    /// <c>Am = e_(k mod n)</c>, <c>Ar = I</c>, <c>B = 1</c>, dynamic weights 0, gates <see cref="ConnectionOptions.GateInit"/>.
    /// </summary>
    /// <param name="options">Options with Kind HyperStatic or HyperDynamic.</param>
    /// <param name="dModel">Model width d.</param>
    /// <param name="sublayerIndex">Sub-layer index k.</param>
    /// <param name="branch">The wrapped branch F.</param>
    public HyperConnection(ConnectionOptions options, int dModel, int sublayerIndex, nn.Module<Tensor, Tensor> branch)
        : base("hyper_connection", RequireKind(options), dModel, sublayerIndex, branch)
    {
        var n = options.Streams;
        using (no_grad())
        {
            var alpha = zeros(n, n + 1);
            alpha[sublayerIndex % n, 0] = tensor(1f);
            alpha[.., 1..] = eye(n);
            static_alpha = new Parameter(alpha);
            static_beta = new Parameter(ones(n));
        }
        if (options.Kind == ConnectionKind.HyperDynamic)
        {
            norm = nn.LayerNorm(dModel, LayerNormEpsilon);
            dynamic_alpha = new Parameter(zeros(dModel, n + 1));
            dynamic_beta = new Parameter(zeros(dModel));
            alpha_scale = new Parameter(tensor((float)options.GateInit));
            beta_scale = new Parameter(tensor((float)options.GateInit));
        }
        RegisterComponents();
    }

    /// <summary>Whether the coefficients depend on the input (HyperDynamic).</summary>
    public bool IsDynamic => norm is not null;

    /// <inheritdoc/>
    /// <remarks>The static matrices and the gates: the HC paper applies no weight decay to the static parts.</remarks>
    public override IReadOnlyList<Tensor> ParametersWithoutWeightDecay =>
        alpha_scale is null ? [static_alpha, static_beta] : [static_alpha, static_beta, alpha_scale, beta_scale!];

    // Dynamic HC's parameters as its kernels read them; static HC has no kernel of its own.
    HyperParameters? Kernel => norm is null ? null
        : new(dynamic_alpha!, dynamic_beta!, norm.weight!, norm.bias!, static_alpha, static_beta, alpha_scale!, beta_scale!);

    /// <inheritdoc/>
    internal override IReadOnlyList<Tensor> KernelParameters => Kernel?.All ?? [];

    /// <inheritdoc/>
    internal override FusedCoefficients FusedCoefficients(Tensor x, bool withGraph, bool withBranchInput, StreamMixing.WritePass? write = null)
    {
        // Static coefficients do not depend on the state: the ordinary code on a leaf copy is already cheap.
        if (Kernel is not { } kernel) return base.FusedCoefficients(x, withGraph, withBranchInput, write);
        using var _ = no_grad();
        var (b, t, n) = (x.size(0), x.size(1), Streams);
        var f = HyperConnectionKernels.Forward(x.view(b * t, n, DModel), kernel, Options.UseTanh, LayerNormEpsilon, withBranchInput, write);
        return new DynamicCoefficients(this, f with
        {
            Pre = f.Pre.view(b, t, n), Post = f.Post.view(b, t, n), Res = f.Res.view(b, t, n, n), BranchInput = f.BranchInput?.view(b, t, DModel),
        }, kernel);
    }

    /// <summary>Dynamic HC's fused coefficients; the backward is one pass of <see cref="HyperConnectionKernels"/>.</summary>
    sealed class DynamicCoefficients(HyperConnection owner, HyperConnectionKernels.Result saved, HyperParameters parameters)
        : FusedCoefficients(saved.Pre, saved.Post, saved.Res, saved.BranchInput)
    {
        protected override IEnumerable<Tensor> Owned() => base.Owned().Concat([saved.Projected, saved.Mean, saved.Rstd]);

        public override (Tensor Gx, IReadOnlyList<(Tensor Parameter, Tensor Gradient)> Parameters) Backward(Tensor x, Tensor g, Tensor gu, Tensor gPost,
            bool overwriteG, StreamMixing.WriteBackwardPass? previous = null)
        {
            using var _ = no_grad();
            var (tokens, n) = (x.size(0) * x.size(1), owner.Streams);
            var (gx, gradients) = HyperConnectionKernels.Backward(x.view(tokens, n, owner.DModel), parameters, owner.Options.UseTanh, saved,
                g.contiguous().view(tokens, n, owner.DModel), gu.contiguous(), gPost.contiguous(), overwriteG, previous);
            return (gx.view(x.shape), parameters.All.Zip(gradients.All).ToList());
        }
    }

    static ConnectionOptions RequireKind(ConnectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Kind is not (ConnectionKind.HyperStatic or ConnectionKind.HyperDynamic))
            throw new ArgumentException($"HyperConnection needs ConnectionOptions.Kind = HyperStatic or HyperDynamic; got {options.Kind}.", nameof(options));
        return options;
    }

    /// <inheritdoc/>
    protected override Mixing ComputeCoefficients(Tensor x)
    {
        using var scope = NewDisposeScope();
        var n = Streams;
        var (b, t) = (x.size(0), x.size(1));
        Tensor alpha, beta;                                        // [B, T, n, n + 1], [B, T, n]
        if (norm is null)
        {
            alpha = static_alpha.to(CoefficientType(x)).expand(b, t, n, n + 1);
            beta = static_beta.to(CoefficientType(x)).expand(b, t, n);
        }
        else
        {
            // Each stream's own normalised row x̄_i drives row i of [Am | Ar] and entry i of B.
            var xn = norm.call(x.to(CoefficientType(x)));         // [B, T, n, d]
            var a = xn.matmul(dynamic_alpha!);                     // [B, T, n, n + 1]
            var c = xn.matmul(dynamic_beta!);                      // [B, T, n]
            if (Options.UseTanh)
            {
                a = a.tanh();
                c = c.tanh();
            }
            alpha = alpha_scale! * a + static_alpha;
            beta = beta_scale! * c + static_beta;
        }
        var pre = alpha.select(-1, 0);                             // Am: [B, T, n]
        // HC applies Arᵀ: output stream i = Σ_j Ar_ji x_j, so Res = Arᵀ (row i = output i).
        var res = alpha.narrow(-1, 1, n).transpose(-1, -2);        // [B, T, n, n]
        return new Mixing(pre.MoveToOuterDisposeScope(), beta.MoveToOuterDisposeScope(), res.MoveToOuterDisposeScope());
    }
}
