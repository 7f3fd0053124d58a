using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// One sub-layer of MUDDFormer (Xiao et al., arXiv 2502.12170). The state <c>[B, T, S, d]</c> keeps S = blocks + 1 slots:
/// slot 0 the embedding, slot b + 1 the output of block b. The attention sub-layer of block b ≥ 1 aggregates slots 0..b
/// into four ways with position-dependent weights (<see cref="DenseAggregation"/>, reading slot b) and writes
/// <c>X_R + Attention(X_Q, X_K, X_V)</c> into slot b + 1; block 0 reads slot 0 for all four. The MLP sub-layer updates slot
/// b + 1 in place: <c>h + MLP(h)</c>. Exactly the <see cref="Mixing"/> of <see cref="ComputeCoefficients"/> plus the
/// query, key and value ways.
/// </summary>
internal sealed class MultiwayDenseConnection : Connection
{
    /// <summary>The ways of an attention sub-layer's aggregation, in this order.</summary>
    public const int Ways = 4;

    const int QueryWay = 0, KeyWay = 1, ValueWay = 2, ResidualWay = 3;

    readonly DenseAggregation? dense;

    /// <summary>Builds sub-layer <paramref name="sublayerIndex"/>: even = block k/2's attention, odd = its MLP.</summary>
    /// <param name="options">Options with Kind MultiwayDense and Streams = blocks + 1 (<see cref="StreamEnds.ForNetwork"/>).</param>
    /// <param name="dModel">Model width d.</param>
    /// <param name="sublayerIndex">Sub-layer index k.</param>
    /// <param name="branch">The branch; an attention sub-layer after block 0 needs one taking separate query, key and value inputs.</param>
    public MultiwayDenseConnection(ConnectionOptions options, int dModel, int sublayerIndex, nn.Module<Tensor, Tensor> branch)
        : base("multiway_dense_connection", options, dModel, sublayerIndex, branch)
    {
        Block = sublayerIndex / 2;
        IsAttention = sublayerIndex % 2 == 0;
        if (options.Streams < Block + 2)
            throw new ArgumentException($"muddformer's sub-layer {sublayerIndex} (block {Block}) writes slot {Block + 1}, but the state has streams = {options.Streams}: it needs blocks + 1 streams.", nameof(options));
        if (IsAttention && Block > 0)
        {
            if (branch is not IMultiInputBranch)
                throw new ArgumentException($"muddformer's sub-layer {sublayerIndex} is an attention sub-layer and needs a branch taking separate query, key and value inputs; got {branch.GetType().Name}.", nameof(branch));
            dense = new DenseAggregation(dModel, Ways, Block + 1);
        }
        RegisterComponents();
    }

    /// <summary>Block b of this sub-layer.</summary>
    public int Block { get; }

    /// <summary>Whether this is the block's attention sub-layer (it aggregates); otherwise its MLP.</summary>
    public bool IsAttention { get; }

    /// <summary>The slot this sub-layer writes: b + 1.</summary>
    int Output => Block + 1;

    /// <summary>The attention sub-layer's aggregation weights <c>[B, T, 4, b + 1]</c> (query, key, value, residual); null for block 0 and MLPs.</summary>
    /// <param name="x">Stream state.</param>
    internal Tensor? Weights(Tensor x) => dense?.Weights(x);

    /// <inheritdoc/>
    /// <remarks>The static aggregation weights: a matrix, but decaying it would pull every way toward reading nothing.</remarks>
    public override IReadOnlyList<Tensor> ParametersWithoutWeightDecay => dense is null ? [] : [dense.StaticWeights];

    /// <inheritdoc/>
    /// <remarks>
    /// Res is the identity except row b + 1 of an attention sub-layer, the residual way's weights (slot b + 1 is overwritten);
    /// Post is e_(b+1); Pre is e_(b+1) for the MLP and, for attention, the mean of the query, key and value ways' weights.
    /// </remarks>
    protected override Mixing ComputeCoefficients(Tensor x)
    {
        using var scope = NewDisposeScope();
        var type = CoefficientType(x);
        var (b, t, s) = (x.size(0), x.size(1), (long)Streams);
        var output = nn.functional.one_hot(tensor((long)Output, device: x.device), s).to(type).expand(b, t, s);
        var res = eye(s, dtype: type, device: x.device).expand(b, t, s, s).clone();
        Tensor pre = output;
        if (IsAttention)
        {
            Tensor weights = dense is null ? ones(b, t, Ways, 1, type, x.device) : dense.Weights(x).to(type);   // [B, T, 4, b + 1]
            var padded = nn.functional.pad(weights, [0, s - weights.size(-1)]);                                   // [B, T, 4, S]
            using (no_grad()) res.select(-2, Output).copy_(padded.select(-2, ResidualWay));
            pre = padded.narrow(-2, QueryWay, 3).mean([-2]);
        }
        return new Mixing(pre.contiguous().MoveToOuterDisposeScope(), output.contiguous().MoveToOuterDisposeScope(), res.MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    internal override bool CanFuse(Tensor x) => false;

    /// <inheritdoc/>
    protected override Tensor Update(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor written;
        if (!IsAttention)
        {
            var h = x.select(2, Output);
            written = h + CallBranch(h);
        }
        else if (dense is null)
        {
            var embedding = x.select(2, 0);
            written = embedding + CallBranch(embedding);
        }
        else
        {
            var ways = dense.Mix(dense.Weights(x), x);   // [B, T, 4, d]
            var attended = ((IMultiInputBranch)Branch).Call(ways.select(2, QueryWay), ways.select(2, KeyWay), ways.select(2, ValueWay));
            written = ways.select(2, ResidualWay) + attended;
        }
        var parts = new List<Tensor> { x.narrow(2, 0, Output), written.unsqueeze(2) };
        if (Output + 1 < Streams) parts.Add(x.narrow(2, Output + 1, Streams - Output - 1));
        return cat(parts, 2).MoveToOuterDisposeScope();
    }
}
