using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// How a network enters and leaves its stream state: after the embedding <c>[B, T, d]</c> → state, before the final
/// norm state → <c>[B, T, d]</c>. For residual, HC and mHC these are n copies and their sum (<see cref="Streams"/>); RMT
/// writes the embedding into its memory and reads the output with learned keys; MUDDFormer keeps the embedding as slot 0
/// and aggregates every block's output at the end. The model registers it as <c>stream_ends</c>.
/// </summary>
internal abstract class StreamEnds : nn.Module
{
    /// <summary>Registers nothing; subclasses register their parameters.</summary>
    /// <param name="name">Module name.</param>
    protected StreamEnds(string name) : base(name) { }

    /// <summary>The state a hidden state <c>[B, T, d]</c> enters the first sub-layer as.</summary>
    /// <param name="h">Embedded input <c>[B, T, d]</c>.</param>
    public abstract Tensor Expand(Tensor h);

    /// <summary>The hidden state <c>[B, T, d]</c> the network's last state leaves as.</summary>
    /// <param name="x">Final stream state.</param>
    public abstract Tensor Collapse(Tensor x);

    /// <summary>
    /// The collapse's linear map at <paramref name="x"/> applied to a perturbation <paramref name="delta"/> of the final state,
    /// with whatever the collapse computes from the state held fixed (what the signal-path diagnostics push through).
    /// </summary>
    /// <param name="x">Final stream state.</param>
    /// <param name="delta">A perturbation of it, same shape.</param>
    public virtual Tensor CollapseLinear(Tensor x, Tensor delta) => Collapse(delta);

    /// <summary>
    /// The connection options every sub-layer of a network of <paramref name="blocks"/> blocks is built with: MUDDFormer keeps
    /// the embedding and every block's output, so its state has blocks + 1 streams whatever <see cref="ConnectionOptions.Streams"/> says.
    /// </summary>
    /// <param name="options">The configured options.</param>
    /// <param name="blocks">Transformer blocks of the network (two sub-layers each).</param>
    public static ConnectionOptions ForNetwork(ConnectionOptions options, int blocks)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Kind != ConnectionKind.MultiwayDense) return options;
        if (blocks + 1 > ConnectionOptions.MaxStreams)
            throw new ArgumentException($"layers = {blocks} is out of range for muddformer, which keeps every block's output as a stream: allowed 1..{ConnectionOptions.MaxStreams - 1}.", nameof(blocks));
        return options with { Streams = blocks + 1 };
    }

    /// <summary>Throws <see cref="ArgumentException"/> when a network of this width and depth cannot use <paramref name="options"/>' kind.</summary>
    /// <param name="options">Connection options, already valid on their own.</param>
    /// <param name="dModel">Model width d.</param>
    /// <param name="blocks">Transformer blocks.</param>
    public static void CheckNetwork(ConnectionOptions options, int dModel, int blocks)
    {
        var network = ForNetwork(options, blocks);
        if (network.Kind == ConnectionKind.ResidualMatrix) ResidualMatrixConnection.Shape(network, dModel);
    }

    /// <summary>The ends of <paramref name="options"/>' kind (options as returned by <see cref="ForNetwork"/>).</summary>
    /// <param name="options">Connection options of the network.</param>
    /// <param name="dModel">Model width d.</param>
    public static StreamEnds Create(ConnectionOptions options, int dModel)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Kind switch
        {
            ConnectionKind.ResidualMatrix => new ResidualMatrixEnds(options, dModel),
            ConnectionKind.MultiwayDense => new MultiwayDenseEnds(options, dModel),
            _ => new StreamCopies(options.Streams),
        };
    }

    // n copies in, their sum out: no parameters.
    sealed class StreamCopies(int streams) : StreamEnds("stream_copies")
    {
        public override Tensor Expand(Tensor h) => Streams.Expand(h, streams);

        public override Tensor Collapse(Tensor x) => Streams.Collapse(x);
    }
}
