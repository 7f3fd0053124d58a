namespace Mhc.Cli.Benchmarks;

/// <summary>Shape of a training-step benchmark (the R1 shape by default: d 512, 8 blocks, seq 256, batch 8).</summary>
sealed record BenchConfig
{
    /// <summary>Model width.</summary>
    public int DModel { get; init; } = 512;

    /// <summary>Transformer blocks.</summary>
    public int Layers { get; init; } = 8;

    /// <summary>Attention heads.</summary>
    public int Heads { get; init; } = 8;

    /// <summary>Sequence length.</summary>
    public int Seq { get; init; } = 256;

    /// <summary>Sequences per step.</summary>
    public int Batch { get; init; } = 8;

    /// <summary>Streams of hc and mhc.</summary>
    public int Streams { get; init; } = 4;

    /// <summary>CPU threads.</summary>
    public int Threads { get; init; } = 2;

    /// <summary>Timed steps per kind (interleaved).</summary>
    public int Steps { get; init; } = 10;

    /// <summary>Untimed steps per kind first.</summary>
    public int Warmup { get; init; } = 2;

    /// <summary>Vocabulary (byte-level by default, so the head does not dominate).</summary>
    public int Vocab { get; init; } = 256;

    /// <summary>Use the reference (unfused) connection path.</summary>
    public bool Reference { get; init; }

    /// <summary>Recompute the connections' intermediates in backward (fused path only).</summary>
    public bool Recompute { get; init; }

    /// <summary>cpu, cuda or cuda:N (CUDA tensors take the reference path).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>
    /// The named shapes: <c>s</c> (the default <c>mhc compare</c> model: d 128, 4 blocks, 4 heads, seq 128, batch 16),
    /// <c>m</c> (d 256, 6 blocks, 4 heads, seq 256, batch 8), <c>r1</c> (the defaults: d 512, 8 blocks) and <c>r2</c>
    /// (d 1024, 16 heads, batch 4).
    /// </summary>
    public static IReadOnlyDictionary<string, BenchConfig> Presets { get; } = new Dictionary<string, BenchConfig>
    {
        ["s"] = new() { DModel = 128, Layers = 4, Heads = 4, Seq = 128, Batch = 16 },
        ["m"] = new() { DModel = 256, Layers = 6, Heads = 4, Seq = 256, Batch = 8 },
        ["r1"] = new(),
        ["r2"] = new() { DModel = 1024, Heads = 16, Batch = 4 },
    };
}
