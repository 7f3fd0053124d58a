using System.Text.Json;
using Mhc.Cli;
using Mhc.Cli.Reports;

namespace Mhc.Tests;

public class SeedSummaryTests
{
    static KindFigures Figures(string kind, int seed, double loss, double gain = 1) =>
        new() { Kind = kind, Seed = seed, FinalValLoss = loss, MaxCompositeForwardGain = gain };

    [Fact]
    public void The_interval_is_the_paired_t_interval_of_the_per_seed_differences()
    {
        // Differences to residual per seed: −0.010, −0.020, −0.015 → mean −0.015, sd 0.005, t(0.975, 2) = 4.303.
        var rows = SeedSummary.Of(
        [
            (0, Figures("residual", 0, 1.500)), (0, Figures("mhc", 0, 1.490, 1.0)),
            (1, Figures("residual", 1, 1.520)), (1, Figures("mhc", 1, 1.500, 1.0)),
            (2, Figures("residual", 2, 1.510)), (2, Figures("mhc", 2, 1.495, 1.2)),
        ], "residual");
        var residual = rows.Single(r => r.Kind == "residual");
        var mhc = rows.Single(r => r.Kind == "mhc");
        Assert.Equal("baseline", residual.Verdict);
        Assert.Equal(3, mhc.Seeds);
        Assert.Equal(1.495, mhc.FinalValLossMean, 12);
        Assert.Equal(0.005, mhc.FinalValLossSd!.Value, 12);       // 1.490, 1.500, 1.495
        Assert.Equal(-0.015, mhc.DiffToBaselineMean, 12);
        var half = 4.303 * 0.005 / Math.Sqrt(3);
        Assert.Equal(-0.015 - half, mhc.DiffCiLow!.Value, 12);
        Assert.Equal(-0.015 + half, mhc.DiffCiHigh!.Value, 12);
        Assert.Equal("better", mhc.Verdict);                       // the interval [−0.0274, −0.0026] excludes 0
        Assert.Equal(1.2, mhc.MaxCompositeForwardGainMax);
        Assert.Contains("mhc vs residual: −0.0150 ± 0.0124, better over 3 seeds", SeedSummary.Sentence(mhc, "residual"), StringComparison.Ordinal);
    }

    [Fact]
    public void Noise_and_a_single_seed_claim_nothing()
    {
        var noisy = SeedSummary.Of(
        [
            (0, Figures("residual", 0, 1.50)), (0, Figures("hc", 0, 1.48)),
            (1, Figures("residual", 1, 1.50)), (1, Figures("hc", 1, 1.53)),
        ], "residual").Single(r => r.Kind == "hc");
        Assert.Equal("within noise", noisy.Verdict);
        Assert.True(noisy.DiffCiLow < 0 && noisy.DiffCiHigh > 0);
        var single = SeedSummary.Of([(0, Figures("residual", 0, 1.50)), (0, Figures("hc", 0, 1.40))], "residual").Single(r => r.Kind == "hc");
        Assert.Equal("within noise", single.Verdict);
        Assert.Null(single.DiffCiLow);
        Assert.Contains("no statement about the difference can be made", SeedSummary.Sentence(single, "residual"), StringComparison.Ordinal);
        Assert.Equal(12.706, SeedSummary.TQuantile(1));
        Assert.Equal(1.96, SeedSummary.TQuantile(200));
    }

    [Fact]
    public void Compare_with_two_seeds_runs_every_kind_at_both_and_summarises()
    {
        using var temp = TestPaths.Temp();
        var outDir = temp.File("cmp");
        string[] tiny = ["--layers", "1", "--d-model", "32", "--heads", "2", "--seq-len", "16", "--batch-size", "4"];
        Assert.Equal(0, CliApp.Run(["compare", "--steps", "3", "--kinds", "residual,mhc", "--seed-list", "5,7", "--out", outDir, .. tiny]));
        foreach (var kind in new[] { "residual", "mhc" })
            foreach (var seed in new[] { 5, 7 })
                Assert.True(File.Exists(Path.Combine(outDir, kind, $"seed-{seed}", "metrics.jsonl")), $"{kind} seed {seed}");
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")));
        var results = report.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal([5, 5, 7, 7], results.Select(r => r.GetProperty("seed").GetInt32()));
        var summary = report.RootElement.GetProperty("summary").EnumerateArray().ToList();
        string[] keys = ["kind", "seeds", "final_val_loss_mean", "final_val_loss_sd", "diff_to_baseline_mean", "diff_ci_low", "diff_ci_high", "max_composite_forward_gain_max", "verdict"];
        foreach (var row in summary)
            foreach (var key in keys) Assert.True(row.TryGetProperty(key, out _), $"summary lacks {key}");
        Assert.Equal("baseline", summary[0].GetProperty("verdict").GetString());
        Assert.Contains(summary[1].GetProperty("verdict").GetString(), new[] { "better", "worse", "within noise" });
        Assert.Equal(2, summary[1].GetProperty("seeds").GetInt32());
        Assert.Contains("Summary over 2 seeds", File.ReadAllText(Path.Combine(outDir, "report.md")), StringComparison.Ordinal);
        Assert.NotEqual(0, CliApp.Run(["compare", "--seeds", "2", "--seed-list", "1,2", "--out", temp.File("x"), .. tiny]));
    }
}
