using Mhc.Connections;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Models;

/// <summary>
/// The attention branch F(u) = Proj(Attention(RMSNorm(u))): multi-head self-attention with its own
/// pre-norm, optional rotary positions and an optional causal mask. Maps <c>[B, T, d]</c> to <c>[B, T, d]</c>.
/// </summary>
public sealed class SelfAttention : nn.Module<Tensor, Tensor>, IMultiInputBranch
{
    readonly RmsNorm norm;
    readonly Linear qkv;
    readonly Linear proj;
    readonly RotaryEmbedding? rotary;
    readonly Dropout dropout;
    readonly int heads;
    readonly bool causal;
    readonly double dropoutRate;

    /// <summary>Creates the branch.</summary>
    /// <param name="dModel">Model width d, divisible by <paramref name="heads"/>.</param>
    /// <param name="heads">Number of attention heads.</param>
    /// <param name="causal">Mask future positions (language models).</param>
    /// <param name="maxPositions">Longest sequence, for rotary positions; 0 disables them.</param>
    /// <param name="dropout">Dropout on attention weights and on the branch output while training.</param>
    public SelfAttention(int dModel, int heads, bool causal, int maxPositions, double dropout) : base("attention")
    {
        if (heads < 1 || dModel % heads != 0)
            throw new ArgumentException($"d_model = {dModel} must be divisible by heads = {heads}.", nameof(heads));
        norm = new RmsNorm(dModel);
        qkv = nn.Linear(dModel, 3 * dModel, hasBias: false);
        proj = nn.Linear(dModel, dModel, hasBias: false);
        rotary = maxPositions > 0 ? new RotaryEmbedding(dModel / heads, maxPositions) : null;
        this.dropout = nn.Dropout(dropout);
        this.heads = heads;
        this.causal = causal;
        dropoutRate = dropout;
        RegisterComponents();
    }

    /// <summary>The output projection, whose initial scale depends on depth.</summary>
    public Linear OutputProjection => proj;

    /// <summary>
    /// While set (during <see cref="Gpt.Generate"/>), the layer keeps the keys and values of what it has seen, and its
    /// input holds only the new tokens, which attend to everything stored (causally among themselves).
    /// </summary>
    internal KeyValueCache? Cache { get; set; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor u)
    {
        using var scope = NewDisposeScope();
        var (b, t, d) = (u.size(0), u.size(1), u.size(2));
        var qkvHeads = qkv.call(norm.call(u)).view(b, t, 3, heads, d / heads).permute(2, 0, 3, 1, 4);   // [3, B, H, T, h]
        return Attend(qkvHeads[0], qkvHeads[1], qkvHeads[2]).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Queries, keys and values from three inputs (MUDDFormer's ways), each through the same pre-norm and its third of the
    /// projection: with one input for all three, <see cref="forward"/>.
    /// </summary>
    Tensor IMultiInputBranch.Call(Tensor query, Tensor key, Tensor value)
    {
        using var scope = NewDisposeScope();
        var (b, t, d) = (query.size(0), query.size(1), query.size(2));
        var weights = qkv.weight!.chunk(3, 0);
        Tensor Heads(Tensor input, int part) =>
            nn.functional.linear(norm.call(input), weights[part]).view(b, t, heads, d / heads).transpose(1, 2);   // [B, H, T, h]
        return Attend(Heads(query, 0), Heads(key, 1), Heads(value, 2)).MoveToOuterDisposeScope();
    }

    // Attention of query, key and value heads [B, H, T, h] (rotary positions, the cache), merged and projected: [B, T, d].
    Tensor Attend(Tensor q, Tensor k, Tensor v)
    {
        var (b, t) = (q.size(0), q.size(2));
        var start = Cache?.Position ?? 0;
        if (rotary is not null)
        {
            q = rotary.Apply(q, start);
            k = rotary.Apply(k, start);
        }
        Tensor attended;
        if (Cache is null || (start == 0 && t > 1))
        {
            // The whole context at once (training, or a cache's first fill).
            Cache?.Append(k, v);
            attended = nn.functional.scaled_dot_product_attention(q, k, v, p: training ? dropoutRate : 0, is_casual: causal);
        }
        else
        {
            if (t != 1) throw new InvalidOperationException("a filled key-value cache takes one new token at a time.");
            var (keys, values) = Cache.Append(k, v);   // the new token and every stored one: all in its past
            attended = nn.functional.scaled_dot_product_attention(q, keys, values);
        }
        var merged = attended.transpose(1, 2).reshape(b, t, -1);
        return dropout.call(proj.call(merged));
    }
}
