using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// MUDDFormer's entry and exit: the embedding becomes slot 0 of a state whose other slots are empty (zero) until their
/// block writes them; the output is one more aggregation (<see cref="DenseAggregation"/>, one way) of all slots, read from
/// the last block's output, which at initialisation is that output alone.
/// </summary>
internal sealed class MultiwayDenseEnds : StreamEnds
{
    readonly DenseAggregation dense;

    /// <summary>Creates the final aggregation over every slot.</summary>
    /// <param name="options">Options with Kind MultiwayDense and Streams = blocks + 1.</param>
    /// <param name="dModel">Model width d.</param>
    public MultiwayDenseEnds(ConnectionOptions options, int dModel) : base("multiway_dense_ends")
    {
        ArgumentNullException.ThrowIfNull(options);
        Slots = options.Streams;
        dense = new DenseAggregation(dModel, ways: 1, Slots);
        RegisterComponents();
    }

    /// <summary>S = blocks + 1.</summary>
    public int Slots { get; }

    /// <summary>The final aggregation weights <c>[B, T, 1, S]</c>.</summary>
    /// <param name="x">Final state.</param>
    internal Tensor Weights(Tensor x) => dense.Weights(x);

    /// <inheritdoc/>
    public override Tensor Expand(Tensor h)
    {
        ArgumentNullException.ThrowIfNull(h);
        using var first = h.unsqueeze(2);
        using var empty = zeros([h.size(0), h.size(1), Slots - 1, h.size(2)], h.dtype, h.device);
        return cat([first, empty], 2);
    }

    /// <inheritdoc/>
    public override Tensor Collapse(Tensor x) => CollapseLinear(x, x);

    /// <inheritdoc/>
    public override Tensor CollapseLinear(Tensor x, Tensor delta)
    {
        using var weights = dense.Weights(x);
        using var mixed = dense.Mix(weights, delta);
        return mixed.squeeze(2);
    }
}
