using System.Text.Json;
using System.Text.Json.Serialization;

namespace Mhc.Training;

/// <summary>One line of <c>metrics.jsonl</c>: the state of a run after <see cref="Step"/> optimizer steps.</summary>
public sealed record MetricsRecord
{
    /// <summary>Completed optimizer steps.</summary>
    public long Step { get; init; }

    /// <summary>Training loss of this step (mean over its micro-batches).</summary>
    public double TrainLoss { get; init; }

    /// <summary>Validation loss, on evaluation steps.</summary>
    public double? ValLoss { get; init; }

    /// <summary>Validation top-1 accuracy, on evaluation steps of classification tasks.</summary>
    public double? ValAccuracy { get; init; }

    /// <summary>Learning rate used for this step.</summary>
    public double Lr { get; init; }

    /// <summary>Global gradient norm before clipping.</summary>
    public double GradNorm { get; init; }

    /// <summary>Training throughput since the previous line (evaluation and checkpoints excluded).</summary>
    public double TokensPerS { get; init; }

    /// <summary>Wall time of this step's forward, backward and update, in milliseconds.</summary>
    public double StepMs { get; init; }

    /// <summary>Wall time since the run started (across resumes).</summary>
    public double ElapsedS { get; init; }

    /// <summary>Whether the step was skipped because of a non-finite loss or gradient.</summary>
    public bool? Skipped { get; init; }

    /// <summary>Stability diagnostics of this step, when measured (see <see cref="TrainingOptions.DiagnosticsEvery"/>).</summary>
    public Diagnostics.DiagnosticsSummary? Diagnostics { get; init; }

    /// <summary>snake_case keys, null values left out.</summary>
    public static JsonSerializerOptions Json { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
