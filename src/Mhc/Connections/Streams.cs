using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// Entering and leaving the n-stream residual state. The state persists through the whole network:
/// expand once after the embedding, collapse once before the final norm (spec §1).
/// </summary>
public static class Streams
{
    /// <summary><c>[B, T, d]</c> → <c>[B, T, n, d]</c>: n identical copies of the hidden state.</summary>
    /// <param name="h">Hidden state <c>[B, T, d]</c>.</param>
    /// <param name="n">Number of streams, at least 1.</param>
    public static Tensor Expand(Tensor h, int n)
    {
        ArgumentNullException.ThrowIfNull(h);
        if (h.dim() != 3)
            throw new ArgumentException($"Streams.Expand expects a hidden state [B, T, d]; got rank {h.dim()} [{string.Join(", ", h.shape)}].", nameof(h));
        if (n < 1)
            throw new ArgumentException($"Streams.Expand: n = {n} is out of range: allowed n >= 1.", nameof(n));
        using var view = h.unsqueeze(-2);
        // A real copy: later code may assume a dense state, and one copy per forward is negligible.
        return n == 1 ? view.alias() : view.expand(h.size(0), h.size(1), n, h.size(2)).contiguous();
    }

    /// <summary><c>[B, T, n, d]</c> → <c>[B, T, d]</c>: the sum over streams.</summary>
    /// <param name="x">Stream state <c>[B, T, n, d]</c>.</param>
    public static Tensor Collapse(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4)
            throw new ArgumentException($"Streams.Collapse expects a stream state [B, T, n, d]; got rank {x.dim()} [{string.Join(", ", x.shape)}].", nameof(x));
        // One stream (the residual network) is its own sum: a view, not a copy and a reduction in the backward.
        return x.size(-2) == 1 ? x.squeeze(-2) : x.sum(-2);
    }
}
