using Mhc.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// Manifold-constrained Hyper-Connections (Xie et al., DeepSeek-AI, arXiv 2512.24880; spec §5). Per
/// token the whole state is flattened to <c>v = vec(x) ∈ R^(n·d)</c> and RMS-normalised, then one
/// projection <c>phi = [φ_pre | φ_post | φ_res]</c> of shape <c>[n·d, n² + 2n]</c> gives
/// <c>H_pre = sigmoid(α_pre·v'φ_pre + b_pre)</c>, <c>H_post = 2·sigmoid(α_post·v'φ_post + b_post)</c>,
/// <c>H_res = Sinkhorn(α_res·mat(v'φ_res) + b_res)</c>: doubly stochastic, so products across depth
/// keep gain 1.
/// </summary>
public sealed class ManifoldHyperConnection : Connection
{
    /// <summary>ε of the RMS normalisation of the flattened state.</summary>
    public const double RmsEpsilon = 1e-6;

    /// <summary>The ε DeepSeek-V4 adds to H_pre and inside Sinkhorn (<see cref="ManifoldDefinition.DeepSeekV4"/>).</summary>
    public const double DeepSeekEpsilon = 1e-6;

    /// <summary>Off-diagonal initial logit of H_res: identity-leaning but far from saturation (spec §5.1).</summary>
    public const double ResOffDiagonalInit = ManifoldInit.ResOffDiagonal;

    /// <summary>
    /// Initial H_pre of the stream sub-layer k reads (k mod n); the other streams share the rest, so H_pre sums to 1
    /// and the branch input is the embedding's copy exactly. Reading the streams unequally breaks their permutation
    /// symmetry, without which they would stay identical for ever (spec §5.1).
    /// </summary>
    public const double PreInitRead = ManifoldInit.PreRead;

    readonly Parameter phi;
    readonly Parameter alpha_pre;
    readonly Parameter alpha_post;
    readonly Parameter alpha_res;
    readonly Parameter bias_pre;
    readonly Parameter bias_post;
    readonly Parameter bias_res;

    /// <summary>
    /// Builds mHC with the spec's initialisation (§5.1): <c>phi = 0</c>, gates <see cref="ConnectionOptions.GateInit"/>,
    /// <c>b_pre</c> such that H_pre = <see cref="PreInitRead"/> on stream k mod n and the rest shared by the others,
    /// <c>b_post = 0</c> (H_post = 1), <c>b_res</c> diagonal 0 and off-diagonal <see cref="ResOffDiagonalInit"/> (or all 0 with
    /// <see cref="ResInit.Uniform"/>).
    /// </summary>
    /// <param name="options">Options with Kind Manifold.</param>
    /// <param name="dModel">Model width d.</param>
    /// <param name="sublayerIndex">Sub-layer index k.</param>
    /// <param name="branch">The wrapped branch F.</param>
    public ManifoldHyperConnection(ConnectionOptions options, int dModel, int sublayerIndex, nn.Module<Tensor, Tensor> branch)
        : base("manifold_hyper_connection", RequireKind(options), dModel, sublayerIndex, branch)
    {
        var n = options.Streams;
        var gate = (float)options.GateInit;
        phi = new Parameter(zeros(n * dModel, n * n + 2 * n));
        alpha_pre = new Parameter(tensor(gate));
        alpha_post = new Parameter(tensor(gate));
        alpha_res = new Parameter(tensor(gate));
        // Sub-layer k reads mostly stream k mod n: the streams are read unequally, so they can separate (spec §5.1).
        bias_pre = new Parameter(ManifoldInit.PreBias(n, sublayerIndex));
        bias_post = new Parameter(zeros(n));
        bias_res = new Parameter(ManifoldInit.ResBias(Enumerable.Range(0, n * n).Select(k => k / n == k % n).ToArray(), options.ResInit).view(n, n));
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override IReadOnlyList<Tensor> ParametersWithoutWeightDecay => [alpha_pre, alpha_post, alpha_res, bias_pre, bias_post, bias_res];

    /// <summary>The parameters as the kernels read them (also what weight layouts map).</summary>
    internal ManifoldParameters Kernel => new(phi, alpha_pre, alpha_post, alpha_res, bias_pre, bias_post, bias_res);

    /// <inheritdoc/>
    internal override IReadOnlyList<Tensor> KernelParameters => Kernel.All;

    // The kernels compute the paper's arithmetic; DeepSeek's ε variant runs on the reference path.
    bool Paper => Options.Definition == ManifoldDefinition.Paper;

    /// <inheritdoc/>
    internal override bool CanFuse(Tensor x) => Paper && base.CanFuse(x);

    /// <inheritdoc/>
    internal override FusedCoefficients FusedCoefficients(Tensor x, bool withGraph, bool withBranchInput, StreamMixing.WritePass? write = null)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var (b, t, n) = (x.size(0), x.size(1), Streams);
        var v = x.reshape(b * t, n * DModel);                                     // [N, n·d]
        var kernel = Kernel;
        var f = ManifoldConnectionKernels.Forward(v, kernel, n, Options.SinkhornIterations, RmsEpsilon, withBranchInput, write);
        var result = new ManifoldCoefficients(this, f with
        {
            Pre = f.Pre.view(b, t, n), Post = f.Post.view(b, t, n), Res = f.Res.view(b, t, n, n), BranchInput = f.BranchInput?.view(b, t, DModel),
        }, v.alias(), kernel);
        foreach (var tensor in result.Tensors) tensor.MoveToOuterDisposeScope();
        return result;
    }

    /// <summary>mHC's fused coefficients; the backward is one pass of <see cref="ManifoldConnectionKernels"/>.</summary>
    sealed class ManifoldCoefficients(ManifoldHyperConnection owner, ManifoldConnectionKernels.Result saved, Tensor v, ManifoldParameters parameters)
        : FusedCoefficients(saved.Pre, saved.Post, saved.Res, saved.BranchInput)
    {
        public IEnumerable<Tensor> Tensors => Owned();

        protected override IEnumerable<Tensor> Owned() => base.Owned().Concat([saved.Projected, saved.Scale, v]);

        public override (Tensor Gx, IReadOnlyList<(Tensor Parameter, Tensor Gradient)> Parameters) Backward(Tensor x, Tensor g, Tensor gu, Tensor gPost,
            bool overwriteG, StreamMixing.WriteBackwardPass? previous = null)
        {
            using var _ = no_grad();
            var (gx, gradients) = ManifoldConnectionKernels.Backward(v, parameters, owner.Streams, owner.Options.SinkhornIterations,
                saved, g.contiguous().view(v.shape), gu.contiguous(), gPost.contiguous(), overwriteG, previous);
            return (gx.view(x.shape), parameters.All.Zip(gradients.All).ToList());
        }
    }

    /// <summary>
    /// The logits H_res is projected from, <c>α_res · mat(v'φ_res) + b_res</c> <c>[B, T, n, n]</c>: diagnostics
    /// read them to see whether Sinkhorn's input is saturated (entries far below their row's maximum stop learning).
    /// </summary>
    /// <param name="x">Stream state <c>[B, T, n, d]</c>.</param>
    public Tensor ResLogits(Tensor x)
    {
        CheckState(x);
        using var scope = NewDisposeScope();
        var v = x.to(CoefficientType(x)).reshape(x.size(0), x.size(1), Streams * DModel);
        return LogitsOf(Project(v)).MoveToOuterDisposeScope();
    }

    // RMSNorm applied after the matmul: (vφ)/rms(v) is the same math and reads v once.
    Tensor Project(Tensor v)
    {
        using var scope = NewDisposeScope();
        var inverseRms = v.square().mean([-1], keepdim: true).add(RmsEpsilon).rsqrt();
        return (v.matmul(phi) * inverseRms).MoveToOuterDisposeScope();
    }

    Tensor LogitsOf(Tensor projected)
    {
        var n = Streams;
        using var scope = NewDisposeScope();
        var res = projected.narrow(-1, 2 * n, n * n).reshape(projected.size(0), projected.size(1), n, n);
        return (alpha_res * res + bias_res).MoveToOuterDisposeScope();
    }

    static ConnectionOptions RequireKind(ConnectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Kind != ConnectionKind.Manifold)
            throw new ArgumentException($"ManifoldHyperConnection needs ConnectionOptions.Kind = Manifold; got {options.Kind}.", nameof(options));
        return options;
    }

    /// <inheritdoc/>
    protected override Mixing ComputeCoefficients(Tensor x)
    {
        using var scope = NewDisposeScope();
        var n = Streams;
        var (b, t) = (x.size(0), x.size(1));
        var v = x.to(CoefficientType(x)).reshape(b, t, n * DModel);              // [B, T, n·d]
        if (!is_grad_enabled() && Paper && UseKernels(v, phi))
        {
            // Without a backward to feed, report exactly what the fused forward applies.
            using var fused = FusedCoefficients(x.contiguous(), withGraph: false, withBranchInput: false);
            return new Mixing(fused.Pre.alias().MoveToOuterDisposeScope(), fused.Post.alias().MoveToOuterDisposeScope(), fused.Res.alias().MoveToOuterDisposeScope());
        }
        var projected = Project(v);                                              // [B, T, n² + 2n]
        var epsilon = Paper ? 0 : DeepSeekEpsilon;
        var pre = (alpha_pre * projected.narrow(-1, 0, n) + bias_pre).sigmoid() + epsilon;
        var post = (alpha_post * projected.narrow(-1, n, n) + bias_post).sigmoid() * 2;
        var res = Sinkhorn.Project(LogitsOf(projected), new SinkhornOptions { Iterations = Options.SinkhornIterations, Epsilon = epsilon });
        return new Mixing(pre.MoveToOuterDisposeScope(), post.MoveToOuterDisposeScope(), res.MoveToOuterDisposeScope());
    }
}
