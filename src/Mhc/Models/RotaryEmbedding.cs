using static TorchSharp.torch;

namespace Mhc.Models;

/// <summary>
/// Rotary position embedding (RoPE): rotates each (i, i + h/2) pair of a head's query and key by an
/// angle proportional to the position, so attention scores depend on relative positions.
/// </summary>
sealed class RotaryEmbedding : nn.Module
{
    /// <summary>Precomputes the angles for positions 0..<paramref name="maxPositions"/>−1.</summary>
    /// <param name="headDim">Head width (even).</param>
    /// <param name="maxPositions">Longest sequence.</param>
    /// <param name="theta">Base of the frequency ladder.</param>
    public RotaryEmbedding(int headDim, int maxPositions, double theta = 10_000) : base("rotary")
    {
        if (headDim % 2 != 0)
            throw new ArgumentException($"RotaryEmbedding needs an even head width; got {headDim}.", nameof(headDim));
        using var scope = NewDisposeScope();
        var frequencies = pow(theta, -arange(0, headDim, 2, ScalarType.Float64) / headDim);   // [h/2]
        var angles = outer(arange(maxPositions, ScalarType.Float64), frequencies);              // [T, h/2]
        // Derived from the config, not learned: kept out of checkpoints.
        register_buffer("cos", angles.cos().to(ScalarType.Float32).MoveToOuterDisposeScope(), persistent: false);
        register_buffer("sin", angles.sin().to(ScalarType.Float32).MoveToOuterDisposeScope(), persistent: false);
    }

    /// <summary>Rotates <paramref name="x"/> of shape <c>[B, H, T, h]</c> whose tokens sit at positions <paramref name="start"/>, start + 1, …</summary>
    /// <param name="x">Queries or keys.</param>
    /// <param name="start">Position of the first token (non-zero while generating with a key-value cache).</param>
    public Tensor Apply(Tensor x, long start = 0)
    {
        using var scope = NewDisposeScope();
        var (t, half) = (x.size(-2), x.size(-1) / 2);
        // Looked up by name: Module.to(device) replaces registered buffers.
        var c = get_buffer("cos")!.narrow(0, start, t).to(x.dtype);
        var s = get_buffer("sin")!.narrow(0, start, t).to(x.dtype);
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        return cat([x1 * c - x2 * s, x2 * c + x1 * s], -1).MoveToOuterDisposeScope();
    }
}
