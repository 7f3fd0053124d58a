using static TorchSharp.torch;

namespace Mhc.Models;

/// <summary>
/// The keys and values one attention layer has computed while generating, so each new token attends to the context
/// without computing it again. Room for one context window (<c>capacity</c> = seq_len tokens); keys are stored rotated.
/// </summary>
sealed class KeyValueCache : IDisposable
{
    readonly int capacity;
    Tensor? keys;     // [B, H, capacity, h]
    Tensor? values;

    public KeyValueCache(int capacity) => this.capacity = capacity;

    /// <summary>Tokens stored, which is also the position of the next one.</summary>
    public long Position { get; private set; }

    /// <summary>Stores the keys and values <c>[B, H, t, h]</c> of the next t tokens and returns every stored one.</summary>
    public (Tensor Keys, Tensor Values) Append(Tensor k, Tensor v)
    {
        var t = k.size(2);
        if (Position + t > capacity)
            throw new InvalidOperationException($"the key-value cache holds {capacity} tokens; {Position} + {t} do not fit.");
        keys ??= zeros([k.size(0), k.size(1), capacity, k.size(3)], k.dtype, k.device).DetachFromDisposeScope();
        values ??= zeros([v.size(0), v.size(1), capacity, v.size(3)], v.dtype, v.device).DetachFromDisposeScope();
        using (no_grad())
        {
            keys.narrow(2, Position, t).copy_(k);
            values.narrow(2, Position, t).copy_(v);
        }
        Position += t;
        return (keys.narrow(2, 0, Position), values.narrow(2, 0, Position));
    }

    public void Dispose()
    {
        keys?.Dispose();
        values?.Dispose();
    }
}
