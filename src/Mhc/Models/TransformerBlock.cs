using Mhc.Connections;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Models;

/// <summary>
/// One transformer block on the stream state <c>[B, T, n, d]</c>: an attention sub-layer and an MLP
/// sub-layer, each wrapped by a <see cref="Connection"/> of the configured kind. Block b owns
/// sub-layers 2b (attention) and 2b + 1 (MLP). Shared by the GPT and the ViT.
/// </summary>
public sealed class TransformerBlock : nn.Module<Tensor, Tensor>
{
    readonly Connection attn_conn;
    readonly Connection mlp_conn;

    /// <summary>Creates block <paramref name="index"/> of <paramref name="blocks"/>.</summary>
    /// <param name="index">Block index b.</param>
    /// <param name="blocks">Number of blocks in the network (scales the initial output projections).</param>
    /// <param name="dModel">Model width d.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="mlpHidden">MLP hidden width (0 = default).</param>
    /// <param name="causal">Causal attention.</param>
    /// <param name="maxPositions">Longest sequence for rotary positions (0 = none).</param>
    /// <param name="dropout">Dropout rate.</param>
    /// <param name="connection">Connection scheme around both sub-layers.</param>
    public TransformerBlock(int index, int blocks, int dModel, int heads, int mlpHidden, bool causal, int maxPositions,
        double dropout, ConnectionOptions connection) : base("block")
    {
        var (attention, feedForward) = Branches(blocks, dModel, heads, mlpHidden, causal, maxPositions, dropout);
        attn_conn = Connection.Create(connection, dModel, 2 * index, attention);
        mlp_conn = Connection.Create(connection, dModel, 2 * index + 1, feedForward);
        RegisterComponents();
    }

    /// <summary>
    /// A block's two branches, attention and SwiGLU MLP, with GPT-2 style initialisation: small normal weights, output
    /// projections scaled down with depth.
    /// </summary>
    /// <param name="blocks">Number of blocks in the network.</param>
    /// <param name="dModel">Model width d.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="mlpHidden">MLP hidden width (0 = default).</param>
    /// <param name="causal">Causal attention.</param>
    /// <param name="maxPositions">Longest sequence for rotary positions (0 = none).</param>
    /// <param name="dropout">Dropout rate.</param>
    public static (SelfAttention Attention, SwiGluMlp Mlp) Branches(int blocks, int dModel, int heads, int mlpHidden, bool causal, int maxPositions, double dropout)
    {
        var attention = new SelfAttention(dModel, heads, causal, maxPositions, dropout);
        var feedForward = new SwiGluMlp(dModel, mlpHidden, dropout);
        using (no_grad())
        {
            foreach (var (_, p) in attention.named_parameters().Concat(feedForward.named_parameters()))
                if (p.dim() == 2) p.normal_(0, 0.02);
            var scaled = 0.02 / Math.Sqrt(2.0 * blocks);
            attention.OutputProjection.weight!.normal_(0, scaled);
            feedForward.OutputProjection.weight!.normal_(0, scaled);
        }
        return (attention, feedForward);
    }

    /// <summary>The attention sub-layer's connection (sub-layer 2b).</summary>
    public Connection Attention => attn_conn;

    /// <summary>The MLP sub-layer's connection (sub-layer 2b + 1).</summary>
    public Connection Mlp => mlp_conn;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => ConnectionChain.Forward([attn_conn, mlp_conn], x);
}
