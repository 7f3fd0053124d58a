namespace Mhc.Cli.Reports;

/// <summary>One kind's figures over the seeds of a comparison (the rows of report.json's <c>summary</c>).</summary>
sealed record KindSummary
{
    /// <summary>Connection kind.</summary>
    public required string Kind { get; init; }

    /// <summary>Seeds run (the same for every kind).</summary>
    public required int Seeds { get; init; }

    /// <summary>Mean final validation loss over the seeds.</summary>
    public double FinalValLossMean { get; init; }

    /// <summary>Sample standard deviation of the final validation loss (null with one seed).</summary>
    public double? FinalValLossSd { get; init; }

    /// <summary>Mean over seeds of (this kind's final validation loss − the baseline's at the same seed).</summary>
    public double DiffToBaselineMean { get; init; }

    /// <summary>Lower end of the 95% paired t interval of that difference (null with one seed, or for the baseline).</summary>
    public double? DiffCiLow { get; init; }

    /// <summary>Upper end of the interval.</summary>
    public double? DiffCiHigh { get; init; }

    /// <summary>Largest composite forward gain over seeds, sub-layers and training.</summary>
    public double MaxCompositeForwardGainMax { get; init; }

    /// <summary>Seeds whose run had a loss spike (<see cref="Comparison.SpikeThreshold"/>) or stopped on a non-finite loss (not: was interrupted).</summary>
    public int LossSpikeSeeds { get; init; }

    /// <summary><c>baseline</c>, <c>better</c> or <c>worse</c> (the interval excludes 0), or <c>within noise</c>.</summary>
    public required string Verdict { get; init; }
}

/// <summary>
/// Statistics over seeds. Each seed fixes the initialisation and the batch order, and every kind sees the same batches at
/// the same seed, so kinds are compared seed by seed: the difference to the baseline is paired, and its 95% interval is
/// Student's t interval of the per-seed differences, mean ± t(0.975, k − 1) · sd / √k. A kind is better or worse only
/// when that interval excludes 0; with one seed there is no interval and no claim.
/// </summary>
static class SeedSummary
{
    /// <summary>Two-sided 95% quantiles t(0.975, df) for df = 1 … 30; beyond, the normal 1.96 is within 2%.</summary>
    static readonly double[] T975 =
    [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];

    /// <summary>t(0.975, <paramref name="df"/>).</summary>
    public static double TQuantile(int df) => df < 1 ? double.NaN : df <= T975.Length ? T975[df - 1] : 1.96;

    /// <summary>
    /// One row per kind, in the order of the runs, from the per-seed figures. Interrupted runs are left out: they trained
    /// fewer steps, so their losses are not comparable, and being stopped says nothing about stability.
    /// </summary>
    /// <param name="figures">Every run's figures with its seed.</param>
    /// <param name="baseline">The baseline kind.</param>
    public static List<KindSummary> Of(IReadOnlyList<(int Seed, KindFigures Figures)> figures, string baseline)
    {
        ArgumentNullException.ThrowIfNull(figures);
        figures = figures.Where(f => !f.Figures.Interrupted).ToList();
        var baselineLoss = figures.Where(f => f.Figures.Kind == baseline).ToDictionary(f => f.Seed, f => f.Figures.FinalValLoss);
        return figures.GroupBy(f => f.Figures.Kind).Select(group =>
        {
            var losses = group.Select(f => f.Figures.FinalValLoss).ToList();
            var differences = group.Where(f => baselineLoss.ContainsKey(f.Seed)).Select(f => f.Figures.FinalValLoss - baselineLoss[f.Seed]).ToList();
            var k = differences.Count;
            var mean = differences.DefaultIfEmpty(double.NaN).Average();
            double? half = group.Key == baseline || k < 2 ? null : TQuantile(k - 1) * StandardDeviation(differences)!.Value / Math.Sqrt(k);
            var verdict = group.Key == baseline ? "baseline"
                : half is { } h && mean - h > 0 ? "worse"
                : half is { } h2 && mean + h2 < 0 ? "better"
                : "within noise";
            return new KindSummary
            {
                Kind = group.Key,
                Seeds = losses.Count,
                FinalValLossMean = losses.Average(),
                FinalValLossSd = StandardDeviation(losses),
                DiffToBaselineMean = mean,
                DiffCiLow = half is { } low ? mean - low : null,
                DiffCiHigh = half is { } high ? mean + high : null,
                MaxCompositeForwardGainMax = group.Select(f => f.Figures.MaxCompositeForwardGain).DefaultIfEmpty(double.NaN).Max(),
                LossSpikeSeeds = group.Count(f => f.Figures.MaxLossSpike >= Comparison.SpikeThreshold || f.Figures.Failure is not null),
                Verdict = verdict,
            };
        }).ToList();
    }

    /// <summary>The verdict in words: "mhc vs residual: −0.0040 ± 0.0060, within noise over 3 seeds".</summary>
    public static string Sentence(KindSummary row, string baseline)
    {
        if (row.Verdict == "baseline") return $"{row.Kind} is the baseline.";
        if (row.DiffCiLow is not { } low || row.DiffCiHigh is not { } high)
            return $"{row.Kind} vs {baseline}: {Signed(row.DiffToBaselineMean)} over {row.Seeds} seed: one seed gives no interval, " +
                   "so no statement about the difference can be made (run with --seeds 3 or more).";
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{row.Kind} vs {baseline}: {Signed(row.DiffToBaselineMean)} ± {(high - low) / 2:F4}, {row.Verdict} over {row.Seeds} seeds (95% paired t interval [{Signed(low)}, {Signed(high)}]).");
    }

    static double? StandardDeviation(List<double> values)
    {
        if (values.Count < 2) return null;
        var mean = values.Average();
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
    }

    static string Signed(double v) => double.IsFinite(v) ? v.ToString("+0.0000;−0.0000;0.0000", System.Globalization.CultureInfo.InvariantCulture) : "–";
}
