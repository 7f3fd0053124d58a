using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// RMT's entry and exit: the embedding <c>[B, T, d]</c>, cut into r pieces, is written into the empty memory as outer products
/// with <c>storage_keys</c> <c>[D_k, r]</c>; the final memory is read with <c>retrieval_keys</c> <c>[r, D_k]</c> into
/// <c>[B, T, d]</c> (the paper's storage and retrieval projections around its stack). Keys start as N(0, 1/D_k).
/// </summary>
internal sealed class ResidualMatrixEnds : StreamEnds
{
    readonly Parameter storage_keys;
    readonly Parameter retrieval_keys;

    /// <summary>Creates the keys for RMT's sizes (<see cref="ResidualMatrixConnection.Shape"/>).</summary>
    /// <param name="options">Options with Kind ResidualMatrix.</param>
    /// <param name="dModel">Model width d.</param>
    public ResidualMatrixEnds(ConnectionOptions options, int dModel) : base("residual_matrix_ends")
    {
        var (reads, keys, _) = ResidualMatrixConnection.Shape(options, dModel);
        storage_keys = new Parameter(ResidualMatrixConnection.RandomKeys(keys, reads, keys));
        retrieval_keys = new Parameter(ResidualMatrixConnection.RandomKeys(reads, keys, keys));
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor Expand(Tensor h) => ResidualMatrixConnection.Write(storage_keys, h);

    /// <inheritdoc/>
    public override Tensor Collapse(Tensor x) => ResidualMatrixConnection.Read(retrieval_keys, x);
}
