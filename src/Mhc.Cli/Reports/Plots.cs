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
    };

    static Color ColorOf(string kind) => Colors.GetValueOrDefault(kind, Color.FromHex("#2CA02C"));

    /// <summary>Training loss (moving average) and validation loss of every kind against the step.</summary>
    public static void Loss(IReadOnlyList<ComparedRun> runs, string path)
    {
        var plot = NewPlot("Loss", "step", "cross-entropy (nats per token)");
        foreach (var run in runs)
        {
            var m = run.Metrics;
            if (m.Count == 0) continue;
            var window = Math.Max(1, m.Count / 50);
            var smoothed = m.Select((_, i) => m.Skip(Math.Max(0, i - window + 1)).Take(Math.Min(window, i + 1)).Average(r => r.TrainLoss)).ToArray();
            var train = plot.Add.Scatter(m.Select(r => (double)r.Step).ToArray(), smoothed, ColorOf(run.Kind).WithAlpha(0.55));
            train.MarkerSize = 0;
            train.LineWidth = 1.5f;
            train.LegendText = window == 1 ? $"{run.Kind} train" : $"{run.Kind} train (moving mean of {window} steps)";
            var evals = m.Where(r => r.ValLoss is not null).ToList();
            if (evals.Count == 0) continue;
            var val = plot.Add.Scatter(evals.Select(r => (double)r.Step).ToArray(), evals.Select(r => r.ValLoss!.Value).ToArray(), ColorOf(run.Kind));
            val.LineWidth = 2.5f;
            val.MarkerSize = 6;
            val.LegendText = $"{run.Kind} validation";
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
        foreach (var run in runs)
        {
            var m = run.Metrics.Where(r => double.IsFinite(r.GradNorm) && r.GradNorm > 0).ToList();
            if (m.Count == 0) continue;
            plotted.AddRange(AddLog(plot, m.Select(r => (double)r.Step).ToArray(), m.Select(r => r.GradNorm).ToArray(), run.Kind, run.Kind, dashed: false, markers: false));
        }
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
        foreach (var run in runs)
        {
            var m = run.Metrics.Where(r => r.Diagnostics is not null).ToList();
            if (m.Count == 0) continue;
            var xs = m.Select(r => (double)r.Step).ToArray();
            plotted.AddRange(AddLog(plot, xs, m.Select(r => r.Diagnostics!.MaxCompositeForwardGain).ToArray(), run.Kind, $"{run.Kind} forward", dashed: false));
            plotted.AddRange(AddLog(plot, xs, m.Select(r => r.Diagnostics!.MaxCompositeBackwardGain).ToArray(), run.Kind, $"{run.Kind} backward", dashed: true));
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
        foreach (var run in runs)
        {
            var m = run.Metrics.Where(r => r.Diagnostics is { } d && d.Sublayers.Any(s => s.ResMean.Length > 1)).ToList();
            if (m.Count == 0) continue;
            var s = plot.Add.Scatter(m.Select(r => (double)r.Step).ToArray(), m.Select(r => value(r.Diagnostics!)).ToArray(), ColorOf(run.Kind));
            s.LineWidth = 2;
            s.MarkerSize = 0;
            s.LegendText = run.Kind;
        }
        Save(plot, path);
    }

    /// <summary>Validation accuracy against the step (classification runs).</summary>
    public static void Accuracy(IReadOnlyList<ComparedRun> runs, string path)
    {
        var plot = NewPlot("Validation top-1 accuracy", "step", "accuracy");
        foreach (var run in runs)
        {
            var m = run.Metrics.Where(r => r.ValAccuracy is not null).ToList();
            if (m.Count == 0) continue;
            var s = plot.Add.Scatter(m.Select(r => (double)r.Step).ToArray(), m.Select(r => r.ValAccuracy!.Value).ToArray(), ColorOf(run.Kind));
            s.LineWidth = 2.5f;
            s.MarkerSize = 6;
            s.LegendText = run.Kind;
        }
        Save(plot, path);
    }

    static void GainBySublayer(IReadOnlyList<ComparedRun> runs, string path, string title, Func<SublayerDiagnostics, double> forward, Func<SublayerDiagnostics, double> backward)
    {
        var plot = NewPlot(title, "sub-layer index k", "gain (token mean)");
        var plotted = new List<double>();
        foreach (var run in runs.Where(r => r.Profile is not null))
        {
            var s = run.Profile!.Sublayers;
            var xs = s.Select(d => (double)d.Index).ToArray();
            plotted.AddRange(AddLog(plot, xs, s.Select(forward).ToArray(), run.Kind, $"{run.Kind} forward (max |row sum|)", dashed: false));
            plotted.AddRange(AddLog(plot, xs, s.Select(backward).ToArray(), run.Kind, $"{run.Kind} backward (max |column sum|)", dashed: true));
        }
        LogAxis(plot, plotted);
        IntegerX(plot);
        Save(plot, path);
    }

    /// <summary>Plots log10 of the values; returns what was plotted so the axis can fit it.</summary>
    static double[] AddLog(Plot plot, double[] xs, double[] ys, string kind, string label, bool dashed, bool markers = true)
    {
        var logs = ys.Select(y => Math.Log10(Math.Max(y, 1e-3))).ToArray();
        var s = plot.Add.Scatter(xs, logs, ColorOf(kind));
        s.LineWidth = 2;
        s.MarkerSize = markers && !dashed ? 5 : 0;
        s.LinePattern = dashed ? LinePattern.Dashed : LinePattern.Solid;
        s.LegendText = label;
        return logs.Where(double.IsFinite).ToArray();
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
