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

    /// <summary>The R2 shape: d = 1024, 16 heads, batch 4.</summary>
    public static BenchConfig R2 { get; } = new() { DModel = 1024, Heads = 16, Batch = 4 };

    /// <summary>The named shapes: r1 (the defaults) and r2.</summary>
    public static IReadOnlyDictionary<string, BenchConfig> Presets { get; } = new Dictionary<string, BenchConfig> { ["r1"] = new(), ["r2"] = R2 };
}
