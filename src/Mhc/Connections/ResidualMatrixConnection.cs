using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// One sub-layer of the Residual Matrix Transformer (Mak &amp; Flanigan, arXiv 2506.22696). Each token's residual stream is a
/// memory matrix X of D_k × D_v (the state <c>[B, T, D_k, D_v]</c>: D_k "streams" of width D_v). The branch input is r vectors
/// read with the key vectors <c>read_keys</c> <c>[r, D_k]</c>, <c>u_s = Σ_k R_sk X_k</c>, laid side by side into d = r·D_v;
/// its output, cut into r pieces y_s, is written as outer products with <c>write_keys</c> <c>[D_k, r]</c>:
/// <c>X' = X + Σ_s W_·s ⊗ y_s</c>. Sizes from the stream count n: r = n reads, D_v = d / n, D_k = n², so the memory holds
/// n·d numbers per token, as n streams of mHC do (<see cref="Shape"/>).
/// </summary>
internal sealed class ResidualMatrixConnection : Connection
{
    readonly Parameter read_keys;
    readonly Parameter write_keys;

    /// <summary>Builds the sub-layer with keys drawn from N(0, 1/D_k), so each key has about unit length.</summary>
    /// <param name="options">Options with Kind ResidualMatrix; Streams = n.</param>
    /// <param name="dModel">Model width d, the branch width; a multiple of n.</param>
    /// <param name="sublayerIndex">Sub-layer index k.</param>
    /// <param name="branch">The wrapped branch F on <c>[B, T, d]</c>.</param>
    public ResidualMatrixConnection(ConnectionOptions options, int dModel, int sublayerIndex, nn.Module<Tensor, Tensor> branch)
        : base("residual_matrix_connection", options, Shape(options, dModel).ValueWidth, sublayerIndex, branch)
    {
        var (reads, keys, _) = Shape(options, dModel);
        read_keys = new Parameter(RandomKeys(reads, keys, keys));
        write_keys = new Parameter(RandomKeys(keys, reads, keys));
        RegisterComponents();
    }

    /// <summary>The memory's rows D_k = n² (what the state's stream dimension holds).</summary>
    public override int Streams => Options.Streams * Options.Streams;

    /// <summary>Read keys R <c>[r, D_k]</c>.</summary>
    public Tensor ReadKeys => read_keys;

    /// <summary>Write keys W <c>[D_k, r]</c>.</summary>
    public Tensor WriteKeys => write_keys;

    /// <summary>
    /// RMT's sizes for n streams and width d: r = n reads and writes per sub-layer, D_v = d / n, D_k = n². Throws naming
    /// the values when d is not a multiple of n.
    /// </summary>
    /// <param name="options">Options with Kind ResidualMatrix.</param>
    /// <param name="dModel">Model width d.</param>
    public static (int Reads, int Keys, int ValueWidth) Shape(ConnectionOptions options, int dModel)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Kind != ConnectionKind.ResidualMatrix)
            throw new ArgumentException($"ResidualMatrixConnection needs ConnectionOptions.Kind = ResidualMatrix; got {options.Kind}.", nameof(options));
        var n = options.Streams;
        if (dModel < n || dModel % n != 0)
            throw new ArgumentException($"d_model = {dModel} is invalid for rmt with streams = {n}: it reads n vectors of d_model / n, so d_model must be a multiple of n.", nameof(dModel));
        return (n, n * n, dModel / n);
    }

    /// <summary>Entries from N(0, 1/<paramref name="fanIn"/>) drawn from torch's generator (seeded by the trainer).</summary>
    internal static Tensor RandomKeys(int rows, int columns, int fanIn)
    {
        using var _ = no_grad();
        return randn(rows, columns).mul_(1.0 / Math.Sqrt(fanIn));
    }

    /// <summary>The r vectors read from the memory, side by side: <c>[B, T, D_k, D_v]</c> → <c>[B, T, r·D_v]</c>.</summary>
    /// <param name="keys">Read keys <c>[r, D_k]</c>.</param>
    /// <param name="x">Memory state.</param>
    internal static Tensor Read(Tensor keys, Tensor x)
    {
        using var read = keys.to(x.dtype).matmul(x);            // [B, T, r, D_v]
        return read.flatten(-2);
    }

    /// <summary>The outer products of <paramref name="y"/> <c>[B, T, r·D_v]</c> cut into r pieces with the write keys: <c>[B, T, D_k, D_v]</c>.</summary>
    /// <param name="keys">Write keys <c>[D_k, r]</c>.</param>
    /// <param name="y">Vectors to write.</param>
    internal static Tensor Write(Tensor keys, Tensor y)
    {
        var reads = keys.size(1);
        using var pieces = y.unflatten(y.dim() - 1, [reads, y.size(-1) / reads]);   // [B, T, r, D_v]
        return keys.to(y.dtype).matmul(pieces);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The memory itself is carried unchanged (Res = I over the D_k rows); Pre and Post, which for RMT are r keys each,
    /// are reported as the mean read key and the mean write key over the r reads.
    /// </remarks>
    protected override Mixing ComputeCoefficients(Tensor x)
    {
        var type = CoefficientType(x);
        var (b, t, rows) = (x.size(0), x.size(1), (long)Streams);
        using var pre = read_keys.detach().to(type).mean([0]);
        using var post = write_keys.detach().to(type).mean([1]);
        return new Mixing(pre.expand(b, t, rows).clone(), post.expand(b, t, rows).clone(),
            eye(rows, dtype: type, device: x.device).expand(b, t, rows, rows).clone());
    }

    /// <inheritdoc/>
    internal override bool CanFuse(Tensor x) => false;

    /// <inheritdoc/>
    protected override Tensor Update(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = CallBranch(Read(read_keys, x));
        return (x + Write(write_keys, y)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    internal override Tensor InjectLinear(Tensor x, Tensor y) => Write(write_keys, y);
}
