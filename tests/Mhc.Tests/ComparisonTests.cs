using Mhc.Cli.Reports;
using Mhc.Diagnostics;
using Mhc.Training;

namespace Mhc.Tests;

public class ComparisonTests
{
    static ComparedRun Run(string kind, double[] train, (long Step, double Val)[] evals, double[] gains, double stepMs)
    {
        var records = train.Select((loss, i) => new MetricsRecord
        {
            Step = i + 1,
            TrainLoss = loss,
            GradNorm = 1 + i,
            StepMs = stepMs,
            ValLoss = evals.Where(e => e.Step == i + 1).Select(e => (double?)e.Val).FirstOrDefault(),
            Diagnostics = i < gains.Length ? new DiagnosticsSummary { MaxCompositeForwardGain = gains[i], MaxCompositeBackwardGain = gains[i] / 2, MinCompositeColumnSum = 1 / gains[i] } : null,
        }).ToList();
        var summary = new TrainingSummary("dir", train.Length, 10, train.TakeLast(10).Average(), evals[^1].Val, null, null, 1000, 1);
        return new ComparedRun(kind, summary, records, null, 100);
    }

    [Fact]
    public void Figures_follow_their_definitions()
    {
        var residual = Run("residual", [3, 2.5, 2.8, 2.0, 1.9, 1.8], [(2, 2.6), (4, 2.1), (6, 1.9)], [1, 1], 100);
        var hc = Run("hc", [3, 2.4, 2.2, 2.9, 1.7, 1.6], [(2, 2.4), (4, 1.85), (6, 1.7)], [1.5, 7.0, 3.0], 150);
        var figures = Comparison.Figures([residual, hc]);
        var r = figures[0];
        var h = figures[1];
        Assert.Equal(0.0, r.GapToBaseline);
        Assert.Equal(1.7 - 1.9, h.GapToBaseline, 12);
        Assert.Equal(0.0, r.MaxLossSpike);           // the one-step rises 2.5 → 2.8 and 2.2 → 2.9 are not sustained
        Assert.Equal(0.0, h.MaxLossSpike);
        Assert.Equal(6, h.MaxGradNorm);
        Assert.Equal(7.0, h.MaxCompositeForwardGain);
        Assert.Equal(3.5, h.MaxCompositeBackwardGain);
        Assert.Equal(1 / 7.0, h.MinCompositeColumnSum, 12);
        // The baseline first reaches its final 1.9 at step 6; hc gets below 1.9 at step 4.
        Assert.Equal(1.0, r.ConvergenceSpeedup);
        Assert.Equal(6.0 / 4, h.ConvergenceSpeedup);
        Assert.Equal(1.5, h.StepTimeRatioToResidual);
        var never = Run("mhc", [3, 3, 3], [(2, 2.95), (3, 2.95)], [], 100);
        Assert.Null(Comparison.Figures([residual, never])[1].ConvergenceSpeedup);
    }

    static List<MetricsRecord> Losses(IEnumerable<double> losses) =>
        losses.Select((loss, i) => new MetricsRecord { Step = i + 1, TrainLoss = loss }).ToList();

    [Fact]
    public void A_loss_spike_is_a_sustained_rise_over_the_recent_minimum()
    {
        // One bad batch: mean of (3, 2, 2, 2, 2) is 2.2, only 0.2 above the minimum 2.
        var blip = Comparison.LargestSpike(Losses([.. Enumerable.Repeat(2.0, 20), 3.0, .. Enumerable.Repeat(2.0, 10)]));
        Assert.Equal(0.2, blip.Rise, 12);

        // Five steps at 3 after ten at 2: a rise of 1 starting at step 11.
        var sustained = Comparison.LargestSpike(Losses([.. Enumerable.Repeat(2.0, 10), .. Enumerable.Repeat(3.0, 5), .. Enumerable.Repeat(2.0, 5)]));
        Assert.Equal(1.0, sustained.Rise, 12);
        Assert.Equal(11, sustained.Step);

        // A slow climb of 0.02 per step: against the lowest of the 20 steps before, the 5-step mean is 0.44 higher, never 0.5.
        var drift = Comparison.LargestSpike(Losses(Enumerable.Range(0, 80).Select(i => 1.0 + 0.02 * i)));
        Assert.Equal(0.44, drift.Rise, 9);
        Assert.True(drift.Rise < Comparison.SpikeThreshold);

        // A loss that stops being finite is an infinite rise where it happens.
        var diverged = Comparison.LargestSpike(Losses([3.0, 2.5, double.NaN, 2.0]));
        Assert.Equal((double.PositiveInfinity, 3L), diverged);
    }

    [Fact]
    public void The_summary_counts_the_seeds_with_a_spike_or_a_stop()
    {
        KindFigures Of(string kind, double spike, string? failure = null) =>
            new() { Kind = kind, FinalValLoss = 2, MaxLossSpike = spike, Failure = failure };
        var summary = SeedSummary.Of(
        [
            (0, Of("residual", 0.1)), (1, Of("residual", 0.2)), (2, Of("residual", 0.3)),
            (0, Of("hc", 0.5)), (1, Of("hc", 0.49)), (2, Of("hc", 0.0, failure: "stopped at step 9: non-finite loss")),
        ], "residual");
        Assert.Equal(0, summary.Single(s => s.Kind == "residual").LossSpikeSeeds);
        Assert.Equal(2, summary.Single(s => s.Kind == "hc").LossSpikeSeeds);
    }

    [Fact]
    public void An_interrupted_run_is_no_loss_spike_and_left_out_of_the_summary()
    {
        var summary = SeedSummary.Of(
        [
            (0, new KindFigures { Kind = "residual", FinalValLoss = 2 }), (1, new KindFigures { Kind = "residual", FinalValLoss = 2 }),
            (0, new KindFigures { Kind = "hc", FinalValLoss = 2.5 }),
            (1, new KindFigures { Kind = "hc", FinalValLoss = 9, MaxLossSpike = 0.1, Interrupted = true }),
        ], "residual");
        var hc = summary.Single(s => s.Kind == "hc");
        Assert.Equal(0, hc.LossSpikeSeeds);
        Assert.Equal(1, hc.Seeds);
        Assert.Equal(2.5, hc.FinalValLossMean, 12);
        Assert.Equal(0.5, hc.DiffToBaselineMean, 12);
    }
}

