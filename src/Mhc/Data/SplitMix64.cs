namespace Mhc.Data;

/// <summary>
/// A tiny deterministic random generator (SplitMix64). Batches are drawn from a generator seeded by
/// (seed, step), so a resumed run sees exactly the batches an uninterrupted one would, with no state to save.
/// </summary>
struct SplitMix64
{
    ulong state;

    /// <summary>A generator for the given stream of seeds; all parts are mixed in.</summary>
    /// <param name="parts">Seed, step, index… in any number.</param>
    public SplitMix64(params ReadOnlySpan<ulong> parts)
    {
        state = 0x9E3779B97F4A7C15UL;
        foreach (var part in parts)
        {
            state ^= part;
            NextUInt64();
        }
    }

    /// <summary>Next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform integer in [0, <paramref name="maxExclusive"/>).</summary>
    /// <param name="maxExclusive">Upper bound, positive.</param>
    public long NextInt64(long maxExclusive) => (long)Math.BigMul(NextUInt64(), (ulong)maxExclusive, out _);

    /// <summary>Uniform double in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
}
