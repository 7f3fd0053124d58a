using Mhc.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// One sub-layer's residual connection around a branch F (attention, MLP, or any module mapping
/// <c>[B, T, d]</c> to <c>[B, T, d]</c> that keeps its own pre-norm). On the stream state
/// <c>x: [B, T, n, d]</c> every scheme computes <c>H_res·x + H_postᵀ·F(H_pre·x)</c> (spec §2); the
/// schemes differ only in how <see cref="Coefficients"/> produces H_pre, H_post and H_res.
/// </summary>
public abstract class Connection : nn.Module<Tensor, Tensor>
{
    readonly nn.Module<Tensor, Tensor> branch;

    /// <summary>Validates the arguments and registers <paramref name="branch"/> as the submodule <c>branch</c>.</summary>
    /// <param name="name">Module name.</param>
    /// <param name="options">Scheme options; validated here.</param>
    /// <param name="dModel">Model width d.</param>
    /// <param name="sublayerIndex">Index k of this sub-layer across the network (attention and MLP count separately).</param>
    /// <param name="branch">The wrapped branch F.</param>
    protected Connection(string name, ConnectionOptions options, int dModel, int sublayerIndex, nn.Module<Tensor, Tensor> branch)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(branch);
        options.Validate();
        if (dModel < 1)
            throw new ArgumentException($"dModel = {dModel} is out of range: allowed >= 1.", nameof(dModel));
        if (sublayerIndex < 0)
            throw new ArgumentException($"sublayerIndex = {sublayerIndex} is out of range: allowed >= 0.", nameof(sublayerIndex));
        Options = options;
        DModel = dModel;
        SublayerIndex = sublayerIndex;
        this.branch = branch;
        register_module("branch", branch);
    }

    /// <summary>
    /// This connection's own parameters that must not get weight decay although they are matrices (mHC's <c>bias_res</c>,
    /// HC's static matrices: decaying them pulls the mixing toward zero instead of the identity). Gates and vectors
    /// are listed too, so the list says everything the scheme exempts.
    /// </summary>
    public virtual IReadOnlyList<Tensor> ParametersWithoutWeightDecay => [];

    /// <summary>The options this connection was built with.</summary>
    public ConnectionOptions Options { get; }

    /// <summary>Number of streams n: the size of the state's stream dimension (RMT: its memory's rows D_k).</summary>
    public virtual int Streams => Options.Streams;

    /// <summary>Model width d.</summary>
    public int DModel { get; }

    /// <summary>Index k of this sub-layer in the network.</summary>
    public int SublayerIndex { get; }

    /// <summary>The wrapped branch F.</summary>
    public nn.Module<Tensor, Tensor> Branch => branch;

    /// <summary>Builds the connection of <paramref name="options"/>.<see cref="ConnectionOptions.Kind"/> around <paramref name="branch"/>.</summary>
    /// <param name="options">Scheme and its options; invalid values throw <see cref="ArgumentException"/>.</param>
    /// <param name="dModel">Model width d.</param>
    /// <param name="sublayerIndex">Index k of the sub-layer (0, 1, 2, … across the network); HC uses it to pick the stream its branch reads at initialisation.</param>
    /// <param name="branch">Any module mapping <c>[B, T, d]</c> to <c>[B, T, d]</c>.</param>
    public static Connection Create(ConnectionOptions options, int dModel, int sublayerIndex, nn.Module<Tensor, Tensor> branch)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return options.Kind switch
        {
            ConnectionKind.Residual => new ResidualConnection(options, dModel, sublayerIndex, branch),
            ConnectionKind.HyperStatic or ConnectionKind.HyperDynamic => new HyperConnection(options, dModel, sublayerIndex, branch),
            ConnectionKind.Manifold => new ManifoldHyperConnection(options, dModel, sublayerIndex, branch),
            _ when options.Kind.IsManifold() => new ManifoldVariantConnection(options, dModel, sublayerIndex, branch),
            ConnectionKind.ResidualMatrix => new ResidualMatrixConnection(options, dModel, sublayerIndex, branch),
            ConnectionKind.MultiwayDense => new MultiwayDenseConnection(options, dModel, sublayerIndex, branch),
            _ => throw new ArgumentException($"ConnectionOptions.Kind = {options.Kind} is not supported.", nameof(options)),
        };
    }

    /// <summary>
    /// The coefficients <see cref="forward"/> applies to <paramref name="x"/>, exactly: Pre <c>[B, T, n]</c>,
    /// Post <c>[B, T, n]</c>, Res <c>[B, T, n, n]</c> with row i = output stream i. Float32 (float64 for
    /// float64 input) whatever the activation precision.
    /// </summary>
    /// <param name="x">Stream state <c>[B, T, n, d]</c>.</param>
    public Mixing Coefficients(Tensor x)
    {
        CheckState(x);
        return ComputeCoefficients(x);
    }

    /// <summary>One sub-layer update of the stream state: <c>[B, T, n, d]</c> → <c>[B, T, n, d]</c>.</summary>
    /// <param name="x">Stream state <c>[B, T, n, d]</c>.</param>
    public override Tensor forward(Tensor x)
    {
        CheckState(x);
        return Update(x);
    }

    /// <summary>
    /// The skip path's linear map at <paramref name="x"/> applied to a perturbation <paramref name="delta"/> of the state: how
    /// the update carries it with the branch output and the coefficients held fixed (<c>H_res·δ</c>). The signal-path
    /// diagnostics push perturbations through it.
    /// </summary>
    /// <param name="x">Stream state the coefficients are computed from.</param>
    /// <param name="delta">A perturbation of the state, same shape.</param>
    internal virtual Tensor CarryLinear(Tensor x, Tensor delta)
    {
        using var m = Coefficients(x);
        return m.Res.to(delta.dtype).matmul(delta);
    }

    /// <summary>
    /// How the update adds a branch output <paramref name="y"/> <c>[B, T, d_branch]</c> to the state at <paramref name="x"/>
    /// (<c>H_post ⊗ y</c>), coefficients held fixed.
    /// </summary>
    /// <param name="x">Stream state the coefficients are computed from.</param>
    /// <param name="y">A branch output.</param>
    internal virtual Tensor InjectLinear(Tensor x, Tensor y)
    {
        using var m = Coefficients(x);
        using var post = m.Post.to(y.dtype).unsqueeze(-1);
        using var row = y.unsqueeze(-2);
        return post * row;
    }

    /// <summary>Computes the coefficients of a validated state.</summary>
    /// <param name="x">Stream state <c>[B, T, n, d]</c>, already checked.</param>
    protected abstract Mixing ComputeCoefficients(Tensor x);

    /// <summary>
    /// The update of a validated state from its coefficients, term by term:
    /// <c>u = Σ_j Pre_j x_j</c>, <c>out_i = Σ_j Res_ij x_j + Post_i · F(u)</c>.
    /// </summary>
    /// <param name="x">Stream state <c>[B, T, n, d]</c>, already checked.</param>
    protected virtual Tensor Update(Tensor x)
    {
        if (CanFuse(x)) return FusedUpdate(x);
        using var scope = NewDisposeScope();
        using var m = ComputeCoefficients(x);
        var pre = m.Pre.to(x.dtype);
        var post = m.Post.to(x.dtype);
        var res = m.Res.to(x.dtype);
        var u = pre.unsqueeze(-2).matmul(x).squeeze(-2);          // [B, T, d]
        var y = branch.call(u);                                    // [B, T, d]
        var output = res.matmul(x) + post.unsqueeze(-1) * y.unsqueeze(-2);
        return output.MoveToOuterDisposeScope();
    }

    // The same update with one pass over the state for the branch input and one for the output.
    Tensor FusedUpdate(Tensor x) =>
        is_grad_enabled() ? ConnectionChainFunction.Apply(x, [this], recompute: false) : ConnectionChain.FusedWithoutGraph([this], x);

    /// <summary>
    /// Whether the fused path runs for this state: the option is on and the state and this connection's
    /// parameters are CPU tensors in float32 or float64. Otherwise the reference path runs (same math).
    /// </summary>
    /// <param name="x">Stream state.</param>
    internal virtual bool CanFuse(Tensor x) => UseKernels([x, .. KernelParameters]);

    /// <summary>The parameters the fused kernels read, whose device and type decide whether they can run.</summary>
    internal virtual IReadOnlyList<Tensor> KernelParameters => [];

    /// <summary>The coefficients for the fused path; by default the ordinary coefficient code on a leaf copy of the state.</summary>
    /// <param name="x">Contiguous stream state.</param>
    /// <param name="withGraph">Whether a backward will follow.</param>
    /// <param name="withBranchInput">Whether the branch input will be taken (<see cref="Connections.FusedCoefficients.TakeBranchInput"/>), so a kernel that reads the state anyway can compute it.</param>
    /// <param name="write">If given, x is this write's output, not made yet: the coefficient pass makes each range of tokens before it reads them.</param>
    internal virtual FusedCoefficients FusedCoefficients(Tensor x, bool withGraph, bool withBranchInput, StreamMixing.WritePass? write = null) =>
        GraphCoefficients.Of(ComputeCoefficients, x, withGraph, write);

    /// <summary>Whether the fused kernels run for these tensors (option on; CPU; float32 or float64).</summary>
    /// <param name="tensors">The tensors the kernel would read.</param>
    protected bool UseKernels(params ReadOnlySpan<Tensor> tensors) => Options.Fused && CpuTensor.Supports(tensors);

    /// <summary>Runs the branch F on a <c>[B, T, d]</c> input.</summary>
    /// <param name="u">Branch input.</param>
    protected Tensor CallBranch(Tensor u) => branch.call(u);

    /// <summary>Precision of the coefficient math: float64 for float64 states, float32 otherwise.</summary>
    /// <param name="x">Stream state.</param>
    protected static ScalarType CoefficientType(Tensor x) =>
        x.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    internal void CheckState(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var n = Streams;
        string Problem() => x.dim() != 4 ? $"rank {x.dim()} instead of 4"
            : x.size(2) != n ? $"{x.size(2)} streams instead of n = {n}"
            : $"width {x.size(3)} instead of d = {DModel}";
        if (x.dim() != 4 || x.size(2) != n || x.size(3) != DModel)
            throw new ArgumentException(
                $"{GetType().Name} (sub-layer {SublayerIndex}) expects a stream state [B, T, n = {n}, d = {DModel}]; got [{string.Join(", ", x.shape)}]: {Problem()}.",
                nameof(x));
        if (!x.is_floating_point())
            throw new ArgumentException($"{GetType().Name} (sub-layer {SublayerIndex}) expects a floating-point stream state; got {x.dtype}.", nameof(x));
    }
}
