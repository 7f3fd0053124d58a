using Mhc.Diagnostics;
using ScottPlot;

namespace Mhc.Cli.Reports;

/// <summary>The comparison's PNG charts (ScottPlot). One color per kind across every chart.</summary>
static class Plots
{
    const int Width = 1200;
    const int Height = 540;

    static readonly Dictionary<string, Color> Colors = new()
    {
        ["residual"] = Color.FromHex("#555555"),
        ["hc-static"] = Color.FromHex("#E69F00"),
        ["hc"] = Color.FromHex("#D62728"),
        ["mhc"] = Color.FromHex("#1F77B4"),
        ["mhc-static"] = Color.FromHex("#17BECF"),
        ["mhc-lite"] = Color.FromHex("#9467BD"),
        ["mhc-res-only"] = Color.FromHex("#8C564B"),
        ["mhc-res-pre"] = Color.FromHex("#E377C2"),
    };

    static Color ColorOf(string kind) => Colors.GetValueOrDefault(kind, Color.FromHex("#2CA02C"));

    /// <summary>Training loss (moving average) and validation loss of every kind against the step.</summary>
    public static void Loss(IReadOnlyList<ComparedRun> runs, string path)
    {
        var plot = NewPlot("Loss", "step", "cross-entropy (nats per token)");
        foreach (var (kind, group) in ByKind(runs))
        {
            var window = Math.Max(1, group.Max(r => r.Metrics.Count) / 50);
            var train = OverSeeds(group.Select(r => Smoothed(r.Metrics, window)));
            AddSeries(plot, kind, window == 1 ? $"{kind} train" : $"{kind} train (moving mean of {window} steps)", train, log: false, width: 1.5f, alpha: 0.55);
            var val = OverSeeds(group.Select(r => r.Metrics.Where(m => m.ValLoss is not null).Select(m => ((double)m.Step, m.ValLoss!.Value)).ToList()));
            AddSeries(plot, kind, $"{kind} validation", val, log: false, width: 2.5f, markers: true);
        }
        // Fit the y axis to the part of training where the kinds differ: from 15% of the steps on.
        var late = runs.SelectMany(r => r.Metrics.Skip(r.Metrics.Count * 15 / 100)
            .SelectMany(m => m.ValLoss is { } v ? new[] { m.TrainLoss, v } : [m.TrainLoss])).Where(double.IsFinite).ToList();
        var optimum = runs.Select(r => r.Summary.OptimalValLoss).FirstOrDefault(o => o is not null);
        if (late.Count > 0)
        {
            var low = late.Min();
            var high = late.Max();
            var pad = 0.05 * Math.Max(high - low, 1e-3);
            plot.Axes.SetLimitsY(low - pad, high + pad);
            if (optimum is { } o && o >= low - pad)
            {
                var line = plot.Add.HorizontalLine(o, 1.5f, Color.FromHex("#2CA02C"), LinePattern.Dashed);
                line.LegendText = "corpus optimum";
            }
            else if (optimum is { } below)
                plot.Title($"Loss (the corpus optimum, {below:F3}, is below this range)");
        }
        Save(plot, path);
    }

    /// <summary>Gradient norm (before clipping) against the step, log scale.</summary>
    public static void GradNorm(IReadOnlyList<ComparedRun> runs, string path)
    {
        var plot = NewPlot("Gradient norm (before clipping)", "step", "global gradient norm");
        var plotted = new List<double>();
        foreach (var (kind, group) in ByKind(runs))
            plotted.AddRange(AddSeries(plot, kind, kind,
                OverSeeds(group.Select(r => r.Metrics.Where(m => double.IsFinite(m.GradNorm) && m.GradNorm > 0).Select(m => ((double)m.Step, m.GradNorm)).ToList())),
                log: true));
        LogAxis(plot, plotted);
        Save(plot, path);
    }

    /// <summary>Composite gain of H_res(L−1)·…·H_res(k) against k at the end of training, log scale.</summary>
    public static void CompositeGain(IReadOnlyList<ComparedRun> runs, string path) =>
        GainBySublayer(runs, path, "Composite gain from sub-layer k to the output (end of training)",
            d => d.CompositeForwardGain, d => d.CompositeBackwardGain);

    /// <summary>Single-layer gain of H_res(k) against k at the end of training, log scale.</summary>
    public static void SingleGain(IReadOnlyList<ComparedRun> runs, string path) =>
        GainBySublayer(runs, path, "Single-layer gain of H_res at sub-layer k (end of training)",
            d => d.ForwardGain, d => d.BackwardGain);

    /// <summary>Largest composite forward and backward gain over the sub-layers, against the training step, log scale.</summary>
    public static void GainHistory(IReadOnlyList<ComparedRun> runs, string path)
    {
        var plot = NewPlot("Largest composite gain during training", "step", "max over sub-layers (token mean)");
        var plotted = new List<double>();
        foreach (var (kind, group) in ByKind(runs))
        {
            List<(double, double)> Of(ComparedRun r, Func<DiagnosticsSummary, double> value) =>
                r.Metrics.Where(m => m.Diagnostics is not null).Select(m => ((double)m.Step, value(m.Diagnostics!))).ToList();
            plotted.AddRange(AddSeries(plot, kind, $"{kind} forward", OverSeeds(group.Select(r => Of(r, d => d.MaxCompositeForwardGain))), log: true, markers: true));
            plotted.AddRange(AddSeries(plot, kind, $"{kind} backward", OverSeeds(group.Select(r => Of(r, d => d.MaxCompositeBackwardGain))), log: true, dashed: true));
        }
        LogAxis(plot, plotted);
        Save(plot, path);
    }

    /// <summary>Stream diversity (mean over sub-layers) against the training step, for the multi-stream kinds.</summary>
    public static void StreamDiversity(IReadOnlyList<ComparedRun> runs, string path) =>
        MultiStreamHistory(runs, path, "Stream diversity during training", "1 − mean pairwise cosine of the streams (mean over sub-layers)",
            d => d.MeanStreamDiversity);

    /// <summary>Off-diagonal mass of the token-mean H_res (mean over sub-layers) against the training step, for the multi-stream kinds.</summary>
    public static void ResMixing(IReadOnlyList<ComparedRun> runs, string path) =>
        MultiStreamHistory(runs, path, "How much H_res mixes the streams during training", "off-diagonal mass of H_res (mean over sub-layers)",
            d => d.MeanResOffDiagonalMass);

    static void MultiStreamHistory(IReadOnlyList<ComparedRun> runs, string path, string title, string y, Func<DiagnosticsSummary, double> value)
    {
        var plot = NewPlot(title, "step", y);
        foreach (var (kind, group) in ByKind(runs))
            AddSeries(plot, kind, kind, OverSeeds(group.Select(r => r.Metrics
                .Where(m => m.Diagnostics is { } d && d.Sublayers.Any(s => s.ResMean.Length > 1))
                .Select(m => ((double)m.Step, value(m.Diagnostics!))).ToList())), log: false);
        Save(plot, path);
    }

    /// <summary>Validation accuracy against the step (classification runs).</summary>
    public static void Accuracy(IReadOnlyList<ComparedRun> runs, string path)
    {
        var plot = NewPlot("Validation top-1 accuracy", "step", "accuracy");
        foreach (var (kind, group) in ByKind(runs))
            AddSeries(plot, kind, kind, OverSeeds(group.Select(r => r.Metrics.Where(m => m.ValAccuracy is not null)
                .Select(m => ((double)m.Step, m.ValAccuracy!.Value)).ToList())), log: false, width: 2.5f, markers: true);
        Save(plot, path);
    }

    static void GainBySublayer(IReadOnlyList<ComparedRun> runs, string path, string title, Func<SublayerDiagnostics, double> forward, Func<SublayerDiagnostics, double> backward)
    {
        var plot = NewPlot(title, "sub-layer index k", "gain (token mean)");
        var plotted = new List<double>();
        foreach (var (kind, group) in ByKind(runs.Where(r => r.Profile is not null).ToList()))
        {
            List<(double, double)> Of(ComparedRun r, Func<SublayerDiagnostics, double> value) => r.Profile!.Sublayers.Select(d => ((double)d.Index, value(d))).ToList();
            plotted.AddRange(AddSeries(plot, kind, $"{kind} forward (max |row sum|)", OverSeeds(group.Select(r => Of(r, forward))), log: true, markers: true));
            plotted.AddRange(AddSeries(plot, kind, $"{kind} backward (max |column sum|)", OverSeeds(group.Select(r => Of(r, backward))), log: true, dashed: true));
        }
        LogAxis(plot, plotted);
        IntegerX(plot);
        Save(plot, path);
    }

    /// <summary>A sweep's figure against the swept setting: a line per kind (mean over seeds, band min–max).</summary>
    public static void AgainstParameter(IReadOnlyList<(string Kind, int Seed, double Value, double? Y)> points, string parameter, string title, string y, bool log, string path)
    {
        var plot = NewPlot(title, parameter, y);
        var plotted = new List<double>();
        foreach (var kind in points.GroupBy(p => p.Kind))
            plotted.AddRange(AddSeries(plot, kind.Key, kind.Key, OverSeeds(kind.GroupBy(p => p.Seed)
                .Select(seed => seed.Where(p => p.Y is { } v && double.IsFinite(v)).OrderBy(p => p.Value).Select(p => (p.Value, p.Y!.Value)).ToList())),
                log, markers: true));
        if (log) LogAxis(plot, plotted);
        Save(plot, path);
    }

    /// <summary>The runs of each kind, in the order the kinds first appear: one run per seed.</summary>
    static IEnumerable<(string Kind, List<ComparedRun> Runs)> ByKind(IReadOnlyList<ComparedRun> runs) =>
        runs.GroupBy(r => r.Kind).Select(g => (g.Key, g.ToList()));

    /// <summary>A run's training loss, each point the mean of the last <paramref name="window"/> logged steps.</summary>
    static List<(double X, double Y)> Smoothed(IReadOnlyList<Training.MetricsRecord> m, int window) =>
        m.Select((r, i) => ((double)r.Step, m.Skip(Math.Max(0, i - window + 1)).Take(Math.Min(window, i + 1)).Average(x => x.TrainLoss))).ToList();

    /// <summary>Mean, lowest and highest over seeds at every x all of them have (a kind of one seed: its own values).</summary>
    static (double[] X, double[] Mean, double[] Low, double[] High, int Seeds) OverSeeds(IEnumerable<List<(double X, double Y)>> seeds)
    {
        var all = seeds.Where(s => s.Count > 0).ToList();
        if (all.Count == 0) return ([], [], [], [], 0);
        var xs = all.Select(s => s.Select(p => p.X).ToHashSet()).Aggregate((a, b) => { a.IntersectWith(b); return a; }).Order().ToArray();
        var values = xs.Select(x => all.Select(s => s.First(p => p.X == x).Y).ToList()).ToList();
        return (xs, values.Select(v => v.Average()).ToArray(), values.Select(v => v.Min()).ToArray(), values.Select(v => v.Max()).ToArray(), all.Count);
    }

    /// <summary>
    /// A kind's line (the mean over seeds) and, with several seeds, a band from the lowest to the highest; log10 of the
    /// values when <paramref name="log"/>. Returns what was plotted, so a log axis can fit it.
    /// </summary>
    static double[] AddSeries(Plot plot, string kind, string label, (double[] X, double[] Mean, double[] Low, double[] High, int Seeds) series, bool log,
        bool dashed = false, bool markers = false, float width = 2, double alpha = 1)
    {
        if (series.X.Length == 0) return [];
        double[] Scale(double[] ys) => log ? ys.Select(y => Math.Log10(Math.Max(y, 1e-3))).ToArray() : ys;
        var (mean, low, high) = (Scale(series.Mean), Scale(series.Low), Scale(series.High));
        if (series.Seeds > 1)
        {
            var band = plot.Add.FillY(series.X, low, high);
            band.FillStyle.Color = ColorOf(kind).WithAlpha(0.15);
            band.LineStyle.Width = 0;
        }
        var line = plot.Add.Scatter(series.X, mean, ColorOf(kind).WithAlpha(alpha));
        line.LineWidth = width;
        line.MarkerSize = markers && !dashed ? 5 : 0;
        line.LinePattern = dashed ? LinePattern.Dashed : LinePattern.Solid;
        line.LegendText = series.Seeds > 1 ? $"{label} (mean of {series.Seeds} seeds, band min–max)" : label;
        return mean.Concat(low).Concat(high).Where(double.IsFinite).ToArray();
    }

    /// <summary>
    /// Data are plotted as log10. Ticks are placed at "nice" values (1, 2, 5 per decade, or finer steps
    /// when the data span less than a decade) and labelled with the value, not its logarithm.
    /// </summary>
    static void LogAxis(Plot plot, List<double> plotted)
    {
        if (plotted.Count == 0) return;
        // Always include 1 (log 0): "no amplification" is the reference every reader looks for.
        var low = Math.Min(plotted.Min(), 0);
        var high = Math.Max(plotted.Max(), 0);
        var pad = Math.Max(0.02, 0.05 * (high - low));
        low -= pad;
        high += pad;
        double[][] ladders =
        [
            [1, 2, 5],
            [1, 1.5, 2, 3, 5, 7],
            [1, 1.1, 1.2, 1.3, 1.5, 1.7, 2, 2.5, 3, 4, 5, 6, 7, 8, 9],
            [1, 1.02, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.4, 1.5, 1.6, 1.8, 2, 2.5, 3, 4, 5, 6, 7, 8, 9],
        ];
        List<double> values = [];
        foreach (var ladder in ladders)
        {
            values = Enumerable.Range((int)Math.Floor(low) - 1, (int)Math.Ceiling(high) - (int)Math.Floor(low) + 2)
                .SelectMany(decade => ladder.Select(m => m * Math.Pow(10, decade)))
                .Where(v => Math.Log10(v) >= low && Math.Log10(v) <= high)
                .ToList();
            if (values.Count >= 4) break;
        }
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (var v in values) ticks.AddMajor(Math.Log10(v), v.ToString(v >= 100 ? "N0" : "0.##", System.Globalization.CultureInfo.InvariantCulture));
        plot.Axes.Left.TickGenerator = ticks;
        plot.Axes.SetLimitsY(low, high);
    }

    static void IntegerX(Plot plot) =>
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };

    static Plot NewPlot(string title, string x, string y)
    {
        var plot = new Plot();
        plot.Title(title);
        plot.XLabel(x);
        plot.YLabel(y);
        return plot;
    }

    static void Save(Plot plot, string path)
    {
        // Outside the data area: curves end in every corner (rising accuracy, falling loss), a legend inside hides some.
        plot.ShowLegend(Edge.Right);
        plot.SavePng(path, Width, Height);
    }
}
