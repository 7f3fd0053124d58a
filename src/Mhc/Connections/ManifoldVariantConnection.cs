using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// mHC's variants, on the reference path (docs/connections.md):
/// <list type="bullet">
/// <item><see cref="ConnectionKind.ManifoldStatic"/>: input-independent coefficients, the biases only (no φ, no gates);
/// H_res still Sinkhorn's projection of <c>b_res</c>.</item>
/// <item><see cref="ConnectionKind.ManifoldLite"/> (arXiv 2601.05732): <c>H_res = Σ_k softmax(α_res·v'φ_res + b_res)_k P_k</c>
/// over the n! permutation matrices P_k, doubly stochastic by construction, no Sinkhorn iterations.</item>
/// <item><see cref="ConnectionKind.ManifoldResOnly"/> and <see cref="ConnectionKind.ManifoldResPre"/>: the mHC paper's
/// ablation, the maps not learned replaced as the paper does (H_pre = 1/n, H_post = 1).</item>
/// </list>
/// The learned maps are computed as mHC's (RMS-normalised flattened state, one projection φ, sigmoid, 2·sigmoid) and start
/// from mHC's initialisation (spec §5.1).
/// </summary>
public sealed class ManifoldVariantConnection : Connection
{
    readonly Parameter? phi;
    readonly Parameter? alpha_pre;
    readonly Parameter? alpha_post;
    readonly Parameter? alpha_res;
    readonly Parameter? bias_pre;
    readonly Parameter? bias_post;
    readonly Parameter? bias_res;
    readonly int resWidth;

    /// <summary>Builds the variant of <paramref name="options"/>.Kind around <paramref name="branch"/>.</summary>
    /// <param name="options">Options with one of mHC's variant kinds.</param>
    /// <param name="dModel">Model width d.</param>
    /// <param name="sublayerIndex">Sub-layer index k.</param>
    /// <param name="branch">The wrapped branch F.</param>
    public ManifoldVariantConnection(ConnectionOptions options, int dModel, int sublayerIndex, nn.Module<Tensor, Tensor> branch)
        : base("manifold_variant_connection", RequireKind(options), dModel, sublayerIndex, branch)
    {
        var n = options.Streams;
        var kind = options.Kind;
        Dynamic = kind != ConnectionKind.ManifoldStatic;
        var learnsPre = kind is not ConnectionKind.ManifoldResOnly;
        var learnsPost = kind is not (ConnectionKind.ManifoldResOnly or ConnectionKind.ManifoldResPre);
        resWidth = kind == ConnectionKind.ManifoldLite ? Permutations(n).Count : n * n;
        var gate = (float)options.GateInit;
        if (learnsPre)
        {
            bias_pre = new Parameter(ManifoldInit.PreBias(n, sublayerIndex));
            if (Dynamic) alpha_pre = new Parameter(tensor(gate));
        }
        if (learnsPost)
        {
            bias_post = new Parameter(zeros(n));
            if (Dynamic) alpha_post = new Parameter(tensor(gate));
        }
        // Logit k of H_res: entry (k / n, k mod n) of the matrix, or permutation k (the identity first).
        var identity = kind == ConnectionKind.ManifoldLite
            ? Enumerable.Range(0, resWidth).Select(k => k == 0).ToArray()
            : Enumerable.Range(0, resWidth).Select(k => k / n == k % n).ToArray();
        bias_res = new Parameter(ManifoldInit.ResBias(identity, options.ResInit));
        if (Dynamic)
        {
            alpha_res = new Parameter(tensor(gate));
            phi = new Parameter(zeros(n * dModel, Width));
        }
        if (kind == ConnectionKind.ManifoldLite)
        {
            // P_k flattened row-major: entry (i, j) is 1 when output stream i takes input stream j.
            var matrices = Permutations(n).SelectMany(p => Enumerable.Range(0, n * n).Select(e => p[e / n] == e % n ? 1f : 0f)).ToArray();
            register_buffer("permutations", tensor(matrices, [resWidth, n * n]), persistent: false);
        }
        RegisterComponents();
    }

    /// <summary>Whether the coefficients depend on the state (all but the static variant).</summary>
    public bool Dynamic { get; }

    // Columns of φ: pre (n), post (n), res (n² or n!), each only when that map is learned.
    int PreWidth => bias_pre is null ? 0 : Streams;
    int PostWidth => bias_post is null ? 0 : Streams;
    int Width => PreWidth + PostWidth + resWidth;

    /// <inheritdoc/>
    public override IReadOnlyList<Tensor> ParametersWithoutWeightDecay =>
        new Tensor?[] { alpha_pre, alpha_post, alpha_res, bias_pre, bias_post, bias_res }.OfType<Tensor>().ToList();

    /// <summary>
    /// The logits H_res is made from: <c>[B, T, n, n]</c> before Sinkhorn, or for mHC-lite <c>[B, T, n!]</c> before the
    /// softmax over permutations. Diagnostics read them to see how saturated that projection is.
    /// </summary>
    /// <param name="x">Stream state <c>[B, T, n, d]</c>.</param>
    public Tensor ResLogits(Tensor x)
    {
        CheckState(x);
        using var scope = NewDisposeScope();
        var logits = Logits(x, Projected(x), bias_res!, alpha_res, PreWidth + PostWidth, resWidth);
        return (Options.Kind == ConnectionKind.ManifoldLite ? logits : logits.reshape(x.size(0), x.size(1), Streams, Streams)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override Mixing ComputeCoefficients(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (b, t, n) = (x.size(0), x.size(1), Streams);
        var type = CoefficientType(x);
        var projected = Projected(x);
        var pre = bias_pre is null ? full([b, t, n], 1.0 / n, type, x.device) : Logits(x, projected, bias_pre, alpha_pre, 0, n).sigmoid();
        var post = bias_post is null ? ones([b, t, n], type, x.device) : Logits(x, projected, bias_post, alpha_post, PreWidth, n).sigmoid() * 2;
        var resLogits = Logits(x, projected, bias_res!, alpha_res, PreWidth + PostWidth, resWidth);
        var res = Options.Kind == ConnectionKind.ManifoldLite
            ? resLogits.softmax(-1).matmul(get_buffer("permutations")!.to(type)).view(b, t, n, n)
            : Sinkhorn.Project(resLogits.reshape(b, t, n, n), Options.SinkhornIterations);
        return new Mixing(pre.MoveToOuterDisposeScope(), post.MoveToOuterDisposeScope(), res.MoveToOuterDisposeScope());
    }

    // (vφ)/rms(v) of the flattened state, as mHC (RMSNorm applied after the matmul); null for the static variant.
    Tensor? Projected(Tensor x)
    {
        if (phi is null) return null;
        var v = x.to(CoefficientType(x)).reshape(x.size(0), x.size(1), Streams * DModel);
        return v.matmul(phi) * v.square().mean([-1], keepdim: true).add(ManifoldHyperConnection.RmsEpsilon).rsqrt();
    }

    // One map's logits: α·(its columns of the projection) + b, or b alone for every token without φ.
    static Tensor Logits(Tensor x, Tensor? projected, Parameter bias, Parameter? alpha, int offset, int width) =>
        projected is null ? bias.to(CoefficientType(x)).expand(x.size(0), x.size(1), width) : alpha! * projected.narrow(-1, offset, width) + bias;

    /// <summary>Every permutation of 0 … n − 1 in lexicographic order: the identity first.</summary>
    internal static List<int[]> Permutations(int n)
    {
        var result = new List<int[]>();
        void Extend(List<int> prefix)
        {
            if (prefix.Count == n)
            {
                result.Add([.. prefix]);
                return;
            }
            foreach (var i in Enumerable.Range(0, n).Where(i => !prefix.Contains(i)))
            {
                prefix.Add(i);
                Extend(prefix);
                prefix.RemoveAt(prefix.Count - 1);
            }
        }
        Extend([]);
        return result;
    }

    static ConnectionOptions RequireKind(ConnectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.Kind.IsManifold() || options.Kind == ConnectionKind.Manifold)
            throw new ArgumentException($"ManifoldVariantConnection takes mHC's variants (mhc-static, mhc-lite, mhc-res-only, mhc-res-pre); got {options.Kind.ToName()}.", nameof(options));
        return options;
    }
}
