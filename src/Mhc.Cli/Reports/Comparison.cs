using Mhc.Diagnostics;
using Mhc.Training;

namespace Mhc.Cli.Reports;

/// <summary>One finished run of a comparison, as read back from its directory.</summary>
/// <param name="Kind">Connection kind name (residual, hc, mhc…).</param>
/// <param name="Summary">What the trainer returned.</param>
/// <param name="Metrics">Every line of its metrics.jsonl.</param>
/// <param name="Profile">Its final stability profile (diagnostics.json), if measured.</param>
/// <param name="PeakMemoryMb">Peak resident memory of the process during the run.</param>
/// <param name="Failure">Why the run stopped early (a non-finite loss…), or null when it finished.</param>
/// <param name="Seed">The seed of its initialisation and batch order.</param>
/// <param name="Interrupted">Stopped by Ctrl+C or SIGTERM before its last step: its figures cover fewer steps than the others'.</param>
sealed record ComparedRun(string Kind, TrainingSummary Summary, IReadOnlyList<MetricsRecord> Metrics, StabilityProfile? Profile, double PeakMemoryMb,
    string? Failure = null, int Seed = 0, bool Interrupted = false);

/// <summary>A run of a comparison that was never started because the comparison was interrupted before it.</summary>
/// <param name="Kind">Connection kind name.</param>
/// <param name="Seed">Its seed.</param>
sealed record NotStartedRun(string Kind, int Seed);

/// <summary>The figures of one kind in a comparison (the rows of report.json).</summary>
sealed record KindFigures
{
    /// <summary>Connection kind.</summary>
    public required string Kind { get; init; }

    /// <summary>The run's seed.</summary>
    public int Seed { get; init; }

    /// <summary>Mean training loss of the last 10 steps.</summary>
    public double FinalTrainLoss { get; init; }

    /// <summary>Validation loss at the end.</summary>
    public double FinalValLoss { get; init; }

    /// <summary>Validation accuracy at the end (classification), else null.</summary>
    public double? FinalValAccuracy { get; init; }

    /// <summary>final_val_loss minus the baseline's (negative = better than the baseline).</summary>
    public double GapToBaseline { get; init; }

    /// <summary>Best achievable validation loss, when the data's distribution is known.</summary>
    public double? OptimalValLoss { get; init; }

    /// <summary>Largest rise of the training loss (<see cref="Comparison.LargestSpike"/>); ≥ 0.5 is a loss spike.</summary>
    public double MaxLossSpike { get; init; }

    /// <summary>Step at which that rise starts.</summary>
    public long MaxLossSpikeStep { get; init; }

    /// <summary>Largest gradient norm (before clipping).</summary>
    public double MaxGradNorm { get; init; }

    /// <summary>Largest composite forward gain measured during training (token-mean convention).</summary>
    public double MaxCompositeForwardGain { get; init; }

    /// <summary>Largest composite backward gain measured during training (token-mean convention).</summary>
    public double MaxCompositeBackwardGain { get; init; }

    /// <summary>Smallest composite column sum measured during training.</summary>
    public double MinCompositeColumnSum { get; init; }

    /// <summary>Largest signal-path gain measured during training (every kind; docs/connections.md).</summary>
    public double MaxSignalGain { get; init; }

    /// <summary>Smallest signal-path gain measured during training.</summary>
    public double MinSignalGain { get; init; }

    /// <summary>Largest signal-path identity error at the first diagnosed step (how far from an identity map the kind starts).</summary>
    public double FirstSignalIdentityError { get; init; }

    /// <summary>Largest signal-path identity error measured during training.</summary>
    public double MaxSignalIdentityError { get; init; }

    /// <summary>
    /// Steps the baseline needed to first reach its final validation loss, divided by the steps this kind
    /// needed to reach that loss; null when it never did.
    /// </summary>
    public double? ConvergenceSpeedup { get; init; }

    /// <summary>Mean training throughput.</summary>
    public double TokensPerS { get; init; }

    /// <summary>Median step time divided by the residual run's median step time.</summary>
    public double? StepTimeRatioToResidual { get; init; }

    /// <summary>Peak resident memory of the process during this run.</summary>
    public double PeakMemoryMb { get; init; }

    /// <summary>Why the run stopped early (a non-finite loss or gradient), or null when it finished or was interrupted.</summary>
    public string? Failure { get; init; }

    /// <summary>Stopped by Ctrl+C or SIGTERM before its last step: left out of the summary over seeds.</summary>
    public bool Interrupted { get; init; }
}

/// <summary>Turns the runs of a comparison into per-kind figures, each computed the same way for every kind.</summary>
static class Comparison
{
    /// <summary>The baseline of a comparison: residual when it was run, else the first kind.</summary>
    public static string Baseline(IReadOnlyList<ComparedRun> runs) => runs.Any(r => r.Kind == "residual") ? "residual" : runs[0].Kind;

    /// <summary>
    /// Figures for every run, each measured against the baseline run of the same seed (the residual run, or the first
    /// kind when there is none).
    /// </summary>
    /// <param name="runs">Finished runs.</param>
    public static List<KindFigures> Figures(IReadOnlyList<ComparedRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        return runs.GroupBy(r => r.Seed).SelectMany(seed => FiguresOfOneSeed(seed.ToList())).ToList();
    }

    static List<KindFigures> FiguresOfOneSeed(List<ComparedRun> runs)
    {
        if (runs.Count == 0) return [];
        var baseline = runs.FirstOrDefault(r => r.Kind == "residual") ?? runs[0];
        var residual = runs.FirstOrDefault(r => r.Kind == "residual");
        var target = baseline.Summary.FinalValLoss;
        var baselineSteps = StepsToReach(baseline.Metrics, target);
        return runs.Select(run =>
        {
            var m = run.Metrics;
            var (spike, spikeStep) = LargestSpike(m);
            var diagnostics = m.Where(r => r.Diagnostics is not null).Select(r => r.Diagnostics!).ToList();
            double Extreme(Func<DiagnosticsSummary, double> value, bool max) =>
                diagnostics.Select(value).DefaultIfEmpty(double.NaN).Aggregate(max ? Math.Max : Math.Min);
            var steps = StepsToReach(m, target);
            return new KindFigures
            {
                Kind = run.Kind,
                Seed = run.Seed,
                FinalTrainLoss = run.Summary.FinalTrainLoss,
                FinalValLoss = run.Summary.FinalValLoss,
                FinalValAccuracy = run.Summary.FinalValAccuracy,
                GapToBaseline = run.Summary.FinalValLoss - baseline.Summary.FinalValLoss,
                OptimalValLoss = run.Summary.OptimalValLoss,
                MaxLossSpike = spike,
                MaxLossSpikeStep = spikeStep,
                MaxGradNorm = m.Count > 0 ? m.Max(r => r.GradNorm) : double.NaN,
                MaxCompositeForwardGain = Extreme(d => d.MaxCompositeForwardGain, max: true),
                MaxCompositeBackwardGain = Extreme(d => d.MaxCompositeBackwardGain, max: true),
                MinCompositeColumnSum = Extreme(d => d.MinCompositeColumnSum, max: false),
                MaxSignalGain = Extreme(d => d.MaxSignalGain, max: true),
                MinSignalGain = Extreme(d => d.MinSignalGain, max: false),
                FirstSignalIdentityError = diagnostics.Count > 0 ? diagnostics[0].MaxSignalIdentityError : double.NaN,
                MaxSignalIdentityError = Extreme(d => d.MaxSignalIdentityError, max: true),
                ConvergenceSpeedup = steps is null || baselineSteps is null ? null : (double)baselineSteps / steps.Value,
                TokensPerS = run.Summary.TokensPerS,
                StepTimeRatioToResidual = residual is null ? null : MedianStepMs(m) / MedianStepMs(residual.Metrics),
                PeakMemoryMb = run.PeakMemoryMb,
                Failure = run.Failure,
                Interrupted = run.Interrupted,
            };
        }).ToList();
    }

    /// <summary>First evaluated step whose validation loss is at or below <paramref name="target"/>.</summary>
    public static long? StepsToReach(IReadOnlyList<MetricsRecord> metrics, double target) =>
        metrics.FirstOrDefault(r => r.ValLoss is { } v && v <= target + 1e-12)?.Step;

    /// <summary>A rise of the training loss this large (nats) is a loss spike (issue: HC's instability shown).</summary>
    public const double SpikeThreshold = 0.5;

    /// <summary>Logged steps a rise is measured over: against the lowest loss of this many steps before it.</summary>
    public const int SpikeWindow = 20;

    /// <summary>Logged steps averaged from where a rise starts, so that one bad batch is not a spike.</summary>
    public const int SpikeHold = 5;

    /// <summary>
    /// The largest rise of the training loss: for each logged step t, the mean loss of steps t … t + 4 minus the lowest
    /// loss of the 20 steps before t; and the step t where it starts. A non-finite loss is an infinite rise.
    /// </summary>
    public static (double Rise, long Step) LargestSpike(IReadOnlyList<MetricsRecord> metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        var best = (Rise: 0.0, Step: 0L);
        for (var i = 1; i < metrics.Count; i++)
        {
            if (!double.IsFinite(metrics[i].TrainLoss)) return (double.PositiveInfinity, metrics[i].Step);
            var lowest = metrics.Skip(Math.Max(0, i - SpikeWindow)).Take(i - Math.Max(0, i - SpikeWindow)).Min(r => r.TrainLoss);
            var ahead = metrics.Skip(i).Take(SpikeHold).Select(r => r.TrainLoss).ToList();
            var rise = ahead.All(double.IsFinite) ? ahead.Average() - lowest : double.PositiveInfinity;
            if (rise > best.Rise) best = (rise, metrics[i].Step);
        }
        return best;
    }

    static double MedianStepMs(IReadOnlyList<MetricsRecord> metrics)
    {
        var sorted = metrics.Select(r => r.StepMs).Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted[sorted.Count / 2];
    }
}
