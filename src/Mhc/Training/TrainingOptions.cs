namespace Mhc.Training;

/// <summary>Optimisation and bookkeeping of a training run (JSON section <c>training</c>).</summary>
public sealed record TrainingOptions
{
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 400;

    /// <summary>Sequences per micro-batch.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Micro-batches accumulated per optimizer step.</summary>
    public int GradAccumulation { get; init; } = 1;

    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 2e-3;

    /// <summary>Final learning rate as a fraction of the peak.</summary>
    public double MinLrRatio { get; init; } = 0.1;

    /// <summary>Linear warm-up steps.</summary>
    public int WarmupSteps { get; init; } = 40;

    /// <summary><c>cosine</c> (warm-up then cosine decay) or <c>step</c> (warm-up, then ×0.316 at 80% and ×0.1 at 90% of training, as in the mHC paper).</summary>
    public string Schedule { get; init; } = "cosine";

    /// <summary>AdamW weight decay, applied to weight matrices only (not norms, biases, gates or HC static parameters).</summary>
    public double WeightDecay { get; init; } = 0.1;

    /// <summary>AdamW β1.</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>AdamW β2.</summary>
    public double Beta2 { get; init; } = 0.95;

    /// <summary>Clip the global gradient norm to this value; 0 = no clipping (the norm is still logged).</summary>
    public double GradClip { get; init; } = 1.0;

    /// <summary>Evaluate the validation loss every this many steps (and at the end).</summary>
    public int EvalEvery { get; init; } = 50;

    /// <summary>Validation batches per evaluation.</summary>
    public int EvalBatches { get; init; } = 8;

    /// <summary>Write a checkpoint every this many steps (and at the end).</summary>
    public int CheckpointEvery { get; init; } = 100;

    /// <summary>Measure stability diagnostics every this many steps (and at every evaluation); 0 = at evaluations only.</summary>
    public int DiagnosticsEvery { get; init; } = 10;

    /// <summary>Log a metrics line every this many steps (evaluation steps are always logged).</summary>
    public int LogEvery { get; init; } = 1;

    /// <summary>Seed of initialisation, batch order and dropout.</summary>
    public int Seed { get; init; }

    /// <summary>CPU threads for TorchSharp; 0 = all cores.</summary>
    public int Threads { get; init; }

    /// <summary>On a NaN or infinite loss or gradient, skip that step instead of stopping the run.</summary>
    public bool SkipNonFinite { get; init; }

    /// <summary>Where the model runs: <c>cpu</c> (default; the fused kernels), <c>cuda</c> or <c>cuda:N</c> (the reference path).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>A weight file (safetensors or PyTorch, either layout) the run starts from instead of a fresh initialisation; null = none.</summary>
    public string? InitFrom { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid value and its allowed range.</summary>
    public void Validate()
    {
        static void Require(bool ok, string key, object value, string range)
        {
            if (!ok) throw new ArgumentException($"training.{key} = {value} is out of range: allowed {range}.", key);
        }
        Require(Steps >= 1, "steps", Steps, ">= 1");
        const int most = 1 << 20;
        Require(BatchSize is >= 1 and <= most, "batch_size", BatchSize, $"1..{most}");
        Require(GradAccumulation is >= 1 and <= most, "grad_accumulation", GradAccumulation, $"1..{most}");
        // Training runs in float32: a rate that is infinite or 0 there fails at step 1, after the run directory was written.
        Require(float.IsFinite((float)LearningRate) && (float)LearningRate > 0, "learning_rate", LearningRate, $"> 0 and representable in float32 ({float.Epsilon:G3}..{float.MaxValue:G3})");
        Require(MinLrRatio is >= 0 and <= 1, "min_lr_ratio", MinLrRatio, "[0, 1]");
        Require(WarmupSteps >= 0, "warmup_steps", WarmupSteps, ">= 0");
        Require(Schedule is "cosine" or "step", "schedule", Schedule, "cosine, step");
        Require(WeightDecay is >= 0 and < 1, "weight_decay", WeightDecay, "[0, 1)");
        Require(Beta1 is >= 0 and < 1, "beta1", Beta1, "[0, 1)");
        Require(Beta2 is >= 0 and < 1, "beta2", Beta2, "[0, 1)");
        Require(float.IsFinite((float)GradClip) && GradClip >= 0, "grad_clip", GradClip, ">= 0 (0 = off), finite in float32");
        Require(EvalEvery >= 1, "eval_every", EvalEvery, ">= 1");
        Require(EvalBatches is >= 1 and <= most, "eval_batches", EvalBatches, $"1..{most}");
        Require(CheckpointEvery >= 1, "checkpoint_every", CheckpointEvery, ">= 1");
        Require(LogEvery >= 1, "log_every", LogEvery, ">= 1");
        Require(DiagnosticsEvery >= 0, "diagnostics_every", DiagnosticsEvery, ">= 0 (0 = at evaluations only)");
        Require(Seed >= 0, "seed", Seed, ">= 0");
        Require(Threads >= 0, "threads", Threads, ">= 0 (0 = all cores)");
        Require(Devices.IsValid(Device), "device", $"'{Device}'", "cpu, cuda, cuda:N");
        Require(InitFrom is null || InitFrom.Length > 0, "init_from", "''", "a weight file's path, or null");
    }
}
