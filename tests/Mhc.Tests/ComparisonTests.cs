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
        Assert.Equal(0.3, r.MaxLossSpike, 12);       // 2.5 → 2.8 at step 3
        Assert.Equal(3, r.MaxLossSpikeStep);
        Assert.Equal(0.7, h.MaxLossSpike, 12);       // 2.2 → 2.9 at step 4
        Assert.Equal(4, h.MaxLossSpikeStep);
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
}
