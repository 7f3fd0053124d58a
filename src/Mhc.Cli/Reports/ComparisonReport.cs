using Mhc.IO;
using System.Text.Json;
using System.Text.Json.Serialization;
using Mhc.Diagnostics;
using Mhc.Training;

namespace Mhc.Cli.Reports;

/// <summary>Writes a comparison's report.json, report.md, report.html and PNG charts, and prints its table.</summary>
static class ComparisonReport
{
    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>What the papers report, shown beside our measurements (spec §8).</summary>
    static readonly (string Measure, string Paper)[] PaperFigures =
    [
        ("HC composite forward gain", "peaks near 3000 (27B MoE, with a loss spike near step 12k)"),
        ("mHC composite forward gain", "at most about 1.6 (27B)"),
        ("mHC final loss vs baseline", "−0.021 (27B, 60 sub-layers)"),
        ("HC convergence speed-up", "1.8× (OLMoE-1B-7B, 500B tokens)"),
        ("mHC extra training time", "6.7% at n = 4 (GPU, fused kernels, recomputation, pipeline overlap)"),
    ];

    public static void Write(string outDir, RunConfig config, IReadOnlyList<ComparedRun> runs, IReadOnlyList<KindFigures> figures, string command,
        IReadOnlyList<NotStartedRun> notStarted)
    {
        Directory.CreateDirectory(outDir);
        var charts = new List<(string Caption, string File)>
        {
            ("Training and validation loss", "loss.png"),
            ("Gradient norm", "grad_norm.png"),
            ("Composite gain against sub-layer index at the end of training (log scale)", "composite_gain.png"),
            ("Single-layer gain against sub-layer index at the end of training (log scale)", "single_gain.png"),
            ("Largest composite gain over training (log scale)", "gain_history.png"),
            ("Stream diversity over training: 1 − mean pairwise cosine similarity of the n streams, mean over sub-layers (0 = identical streams)", "stream_diversity.png"),
            ("Off-diagonal mass of the token-mean H_res over training, mean over sub-layers (0 = no mixing between streams)", "res_mixing.png"),
        };
        Plots.Loss(runs, Path.Combine(outDir, "loss.png"));
        Plots.GradNorm(runs, Path.Combine(outDir, "grad_norm.png"));
        Plots.CompositeGain(runs, Path.Combine(outDir, "composite_gain.png"));
        Plots.SingleGain(runs, Path.Combine(outDir, "single_gain.png"));
        Plots.GainHistory(runs, Path.Combine(outDir, "gain_history.png"));
        Plots.StreamDiversity(runs, Path.Combine(outDir, "stream_diversity.png"));
        Plots.ResMixing(runs, Path.Combine(outDir, "res_mixing.png"));
        if (MixingChart.Write(runs, Path.Combine(outDir, "mixing.png")))
            charts.Add(("The mixing matrices at the end of training (as the mHC paper's Fig. 8): token-mean H_res of each sub-layer and the composite from it to the output, one colour scale", "mixing.png"));
        if (figures.Any(f => f.FinalValAccuracy is not null))
        {
            Plots.Accuracy(runs, Path.Combine(outDir, "accuracy.png"));
            charts.Insert(1, ("Validation accuracy", "accuracy.png"));
        }

        var baseline = Comparison.Baseline(runs);
        var summary = Summary(figures, baseline);
        AtomicFile.WriteAllText(Path.Combine(outDir, "report.json"), JsonSerializer.Serialize(new
        {
            command,
            baseline,
            config = JsonDocument.Parse(config.ToJson()).RootElement,
            results = figures,
            summary,
            not_started = notStarted,
        }, Json));

        var document = Build(config, runs, figures, summary, baseline, command, charts, notStarted);
        AtomicFile.WriteAllText(Path.Combine(outDir, "report.md"), document.ToMarkdown());
        AtomicFile.WriteAllText(Path.Combine(outDir, "report.html"), document.ToHtml("mHC.NET comparison", outDir));
    }

    public static void PrintTable(IReadOnlyList<KindFigures> figures, string baseline, IReadOnlyList<NotStartedRun> notStarted)
    {
        var (header, rows) = MainTable(figures);
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Select(r => r[i].Length).DefaultIfEmpty(0).Max())).ToArray();
        Console.WriteLine(string.Join("  ", header.Select((h, i) => h.PadLeft(widths[i]))));
        foreach (var row in rows) Console.WriteLine(string.Join("  ", row.Select((c, i) => c.PadLeft(widths[i]))));
        foreach (var row in Summary(figures, baseline).Where(r => r.Verdict != "baseline")) Console.WriteLine(SeedSummary.Sentence(row, baseline));
        foreach (var line in Stops(figures, notStarted)) Console.WriteLine(line);
    }

    /// <summary>What Ctrl+C or SIGTERM left out: the runs interrupted, and those never started.</summary>
    static IEnumerable<string> Stops(IReadOnlyList<KindFigures> figures, IReadOnlyList<NotStartedRun> notStarted)
    {
        var seeded = figures.Select(f => f.Seed).Concat(notStarted.Select(n => n.Seed)).Distinct().Count() > 1;
        var interrupted = figures.Where(f => f.Interrupted).Select(f => Name(f.Kind, f.Seed, seeded)).ToList();
        if (interrupted.Count > 0)
            yield return $"Interrupted (Ctrl+C or SIGTERM) before their last step, so left out of the summary: {string.Join(", ", interrupted)}.";
        if (notStarted.Count > 0)
            yield return $"Not started, because the comparison was stopped before them: {string.Join(", ", notStarted.Select(n => Name(n.Kind, n.Seed, seeded)))}.";
    }

    static string Name(string kind, int seed, bool seeded) => seeded ? $"{kind} (seed {seed})" : kind;

    static List<KindSummary> Summary(IReadOnlyList<KindFigures> figures, string baseline) =>
        SeedSummary.Of(figures.Select(f => (f.Seed, f)).ToList(), baseline);

    static ReportDocument Build(RunConfig config, IReadOnlyList<ComparedRun> runs, IReadOnlyList<KindFigures> figures, List<KindSummary> summary,
        string baseline, string command, List<(string Caption, string File)> charts, IReadOnlyList<NotStartedRun> notStarted)
    {
        var t = config.Training;
        var vision = config.Task == RunConfig.Vision;
        var perSequence = vision ? config.Vit.Tokens : config.Model.SeqLen;
        var tokens = (long)t.Steps * t.BatchSize * t.GradAccumulation * perSequence;
        var layers = vision ? config.Vit.Layers : config.Model.Layers;
        var doc = new ReportDocument()
            .Heading1($"mHC.NET comparison: {string.Join(" vs ", runs.Select(r => r.Kind).Distinct())}")
            .Text($"Data: {DataDescription(config)}. Model: {RunDescription.Model(config)} ({2 * layers} sub-layers); n = {config.Connection.Streams} " +
                  $"streams for the multi-stream kinds. Training: {t.Steps} steps of {t.BatchSize * t.GradAccumulation} {(vision ? "images" : "sequences")} " +
                  $"({tokens:N0} tokens per kind), AdamW ({t.Beta1}, {t.Beta2}), peak learning rate {t.LearningRate:G3} ({t.Schedule}), weight decay {t.WeightDecay}, " +
                  $"gradient clipping {(t.GradClip > 0 ? t.GradClip.ToString("G3") : "off")}, seed {t.Seed}, {Environment.ProcessorCount} CPU cores. " +
                  $"Every kind saw the same batches. Gains are measured on one fixed validation {(vision ? "image" : "sequence")} every {t.DiagnosticsEvery} steps.");
        var seeds = summary.Count > 0 ? summary[0].Seeds : 1;
        doc.Heading2(seeds > 1 ? $"Summary over {seeds} seeds" : "Summary")
            .Table(["kind", "seeds", "final val loss (mean ± sd)", $"difference to {baseline}", "95% interval", "max composite fwd gain", "loss spikes", "verdict"],
                summary.Select(s => (IReadOnlyList<string>)[s.Kind, s.Seeds.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    s.FinalValLossSd is { } sd ? $"{F(s.FinalValLossMean)} ± {F(sd)}" : F(s.FinalValLossMean), Signed(s.DiffToBaselineMean),
                    s.DiffCiLow is { } low && s.DiffCiHigh is { } high ? $"[{Signed(low)}, {Signed(high)}]" : "–", F(s.MaxCompositeForwardGainMax, 3),
                    $"{s.LossSpikeSeeds} of {s.Seeds}", s.Verdict]))
            .List(summary.Where(s => s.Verdict != "baseline").Select(s => SeedSummary.Sentence(s, baseline)))
            .Text("Each seed fixes the initialisation and the batch order; every kind sees the same batches at the same seed, so differences to the " +
                  "baseline are paired by seed. The interval is Student's t interval of the per-seed differences (mean ± t(0.975, k − 1)·sd/√k); " +
                  "a kind is better or worse only when it excludes 0. Loss spikes = seeds whose training loss rose by 0.5 nats or more " +
                  "(the mean of 5 steps against the lowest of the 20 before) or went non-finite. `--seeds k` runs k seeds; `--preset deep` " +
                  "(32 sub-layers, a high learning rate) is where HC's gain grows, `--preset spike` where HC's loss spikes.");
        var (header, rows) = MainTable(figures);
        doc.Heading2(seeds > 1 ? "Every run" : "Results").Table(header, rows)
            .Text($"Baseline: {baseline}. Gap = final validation loss minus the baseline's (negative is better). Loss spike = largest rise of the training loss: " +
                  "the mean of 5 logged steps minus the lowest loss of the 20 steps before them, @ the step where it starts (≥ 0.5 counts as a spike). Gains are the largest over sub-layers and over training, averaged over the probe's tokens (max |row sum| forward, " +
                  "max |column sum| backward, of H_res(L−1)·…·H_res(k)); 1 means no amplification. Signal gain and identity error measure, for every kind " +
                  "alike, the skip path from a sub-layer's branch output to the head's input with a random probe (|P_k v| / |v| and |P_k v − v| / |v|, token " +
                  "means; first = at the first diagnosed step): 1 and 0 for an identity map (docs/connections.md). Convergence speed-up = steps the baseline needed to first reach " +
                  "its final validation loss, divided by the steps this kind needed to reach it (– = never reached). Step-time ratios come from runs made one " +
                  "after another; `mhc bench` measures them side by side. Peak memory is the process's peak resident set during the run.");
        doc.Heading2("What happened").List(Narrative(figures, runs, baseline).Concat(Stops(figures, notStarted)));
        doc.Heading2("Beside the papers").Table(["measure", "this comparison", "papers report"], PaperRows(figures));
        doc.Heading2("Diagnostics at the end of training")
            .Table(["kind", "composite fwd gain (of mean)", "composite bwd gain (of mean)", "max single fwd gain", "max |row/col sum − 1| of H_res",
                    "H_pre range", "H_post range", "Sinkhorn saturation", "adjacent-state cosine", "stream diversity", "H_res off-diagonal mass",
                    "signal gain min … max", "signal identity error max"],
                runs.Where(r => r.Profile is not null).Select(r => EndRow(r, seeds > 1)))
            .Text("The token-mean convention (table above) averages per-token gains; \"of mean\" takes the gain of the token-mean matrix. " +
                  "Saturation = share of Sinkhorn input logits more than 8 below their row's maximum (mHC only). Adjacent-state cosine = mean cosine similarity " +
                  "of the stream state before and after each sub-layer (the HC paper's representation-collapse measure; near 1 means layers change little). " +
                  "Stream diversity = 1 − the mean pairwise cosine similarity of the n streams entering a sub-layer, mean over sub-layers (0 = the streams are " +
                  "identical copies, and H_res has nothing to mix). Off-diagonal mass = mean over rows of Σ_(j≠i) of the token-mean H_res.");
        doc.Heading2("Charts");
        foreach (var (caption, file) in charts) doc.Figure(caption, file);
        doc.Heading2("Reproduce").Text("Command:").CodeBlock("sh", command).Text("Resolved configuration (each kind's folder holds its own config.json):")
            .CodeBlock("json", config.ToJson());
        return doc;
    }

    static string DataDescription(RunConfig config) => (config.Task, config.Data.Path) switch
    {
        (RunConfig.Vision, null) => "the built-in shapes set (8 classes by global arrangement)",
        (RunConfig.Vision, var path) => $"the image folder {path}",
        (_, null) => "the built-in binding-chain language (character level, optimum known)",
        (_, var path) => $"{path} ({config.Data.Tokenizer ?? "gpt2"} tokens)",
    };

    static (string[] Header, List<IReadOnlyList<string>> Rows) MainTable(IReadOnlyList<KindFigures> figures)
    {
        var accuracy = figures.Any(f => f.FinalValAccuracy is not null);
        var seeded = figures.Select(f => f.Seed).Distinct().Count() > 1;
        var header = new List<string> { "kind", "final train", "final val" };
        if (seeded) header.Insert(1, "seed");
        if (accuracy) header.Add("val accuracy");
        header.AddRange(["gap", "max loss spike", "max grad norm", "composite fwd gain", "composite bwd gain", "min composite col sum",
            "signal gain min … max", "signal identity error first / max", "convergence speed-up", "tokens/s", "step time / residual", "peak MB"]);
        var rows = figures.Select(f =>
        {
            var row = new List<string> { f.Kind + (f.Failure is not null ? " (stopped)" : f.Interrupted ? " (interrupted)" : ""), F(f.FinalTrainLoss), F(f.FinalValLoss) };
            if (seeded) row.Insert(1, f.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (accuracy) row.Add(f.FinalValAccuracy is { } a ? $"{a:P1}" : "–");
            row.AddRange([Signed(f.GapToBaseline), $"{F(f.MaxLossSpike)} @{f.MaxLossSpikeStep}", F(f.MaxGradNorm, 2), F(f.MaxCompositeForwardGain, 3),
                F(f.MaxCompositeBackwardGain, 3), F(f.MinCompositeColumnSum, 3),
                $"{F(f.MinSignalGain, 3)} … {F(f.MaxSignalGain, 3)}", $"{F(f.FirstSignalIdentityError, 3)} / {F(f.MaxSignalIdentityError, 3)}", f.ConvergenceSpeedup is { } s ? $"{s:F2}×" : "–",
                $"{f.TokensPerS:N0}", f.StepTimeRatioToResidual is { } r ? $"{r:F2}" : "–", $"{f.PeakMemoryMb:N0}"]);
            return (IReadOnlyList<string>)row;
        }).ToList();
        return (header.ToArray(), rows);
    }

    static IEnumerable<string> Narrative(IReadOnlyList<KindFigures> figures, IReadOnlyList<ComparedRun> runs, string baseline)
    {
        foreach (var f in figures)
        {
            var optimum = f.OptimalValLoss is { } o ? $" (corpus optimum {o:F4}, gap {f.FinalValLoss - o:F4})" : "";
            var name = Name(f.Kind, f.Seed, figures.Select(x => x.Seed).Distinct().Count() > 1);
            var line = $"{name}: final validation loss {F(f.FinalValLoss)}{optimum}";
            if (f.Kind != baseline) line += $", {Signed(f.GapToBaseline)} against {baseline}";
            line += $"; largest composite gain {F(f.MaxCompositeForwardGain, 3)} forward / {F(f.MaxCompositeBackwardGain, 3)} backward; " +
                    $"largest loss spike {F(f.MaxLossSpike)} at step {f.MaxLossSpikeStep}; largest gradient norm {F(f.MaxGradNorm, 2)}.";
            if (f.Failure is not null) line += $" The run {f.Failure}.";
            if (f.Interrupted) line += $" The run was interrupted at step {runs.First(r => r.Kind == f.Kind && r.Seed == f.Seed).Summary.Steps}; its figures cover the steps before.";
            yield return line;
        }
        var hc = figures.FirstOrDefault(f => f.Kind == "hc") ?? figures.FirstOrDefault(f => f.Kind == "hc-static");
        var mhc = figures.FirstOrDefault(f => f.Kind == "mhc");
        if (hc is not null && mhc is not null)
        {
            yield return hc.MaxCompositeForwardGain > 2 * Math.Max(mhc.MaxCompositeForwardGain, 1)
                ? $"HC's unconstrained mixing amplified signals up to {hc.MaxCompositeForwardGain:F2}× across depth; mHC's doubly stochastic H_res kept the composite gain at {mhc.MaxCompositeForwardGain:F3}."
                : $"HC's composite gain stayed at {hc.MaxCompositeForwardGain:F3} (mHC: {mhc.MaxCompositeForwardGain:F3}): no large amplification in this run. Short or shallow runs can hide it; `--preset deep` uses 32 sub-layers and a higher learning rate.";
            yield return hc.MaxLossSpike >= Comparison.SpikeThreshold
                ? $"HC's training loss spiked by {F(hc.MaxLossSpike)} nats at step {hc.MaxLossSpikeStep}; mHC's largest rise was {F(mhc.MaxLossSpike)}."
                : $"No loss spike in HC (largest rise {F(hc.MaxLossSpike)} nats; a spike is 0.5 or more). `--preset spike` is a setting where HC's loss spikes.";
            var better = mhc.FinalValLoss < hc.FinalValLoss ? "mHC" : "HC";
            yield return $"Final validation loss: mHC {F(mhc.FinalValLoss)}, HC {F(hc.FinalValLoss)} ({better} lower by {Math.Abs(mhc.FinalValLoss - hc.FinalValLoss):F4}).";
        }
        if (runs.Any(r => r.Failure is not null))
            yield return "Runs marked (stopped) hit a non-finite loss or gradient; their figures cover the steps before it.";
    }

    static IEnumerable<IReadOnlyList<string>> PaperRows(IReadOnlyList<KindFigures> figures)
    {
        string Of(string kind, Func<KindFigures, string> pick) => figures.FirstOrDefault(f => f.Kind == kind) is { } f ? pick(f) : "not run";
        var ours = new[]
        {
            Of("hc", f => F(f.MaxCompositeForwardGain, 3)),
            Of("mhc", f => F(f.MaxCompositeForwardGain, 3)),
            Of("mhc", f => Signed(f.GapToBaseline)),
            Of("hc", f => f.ConvergenceSpeedup is { } s ? $"{s:F2}×" : "baseline loss not reached"),
            Of("mhc", f => f.StepTimeRatioToResidual is { } r ? $"{(r - 1) * 100:F1}% (sequential runs; see `mhc bench`)" : "–"),
        };
        return PaperFigures.Select((p, i) => (IReadOnlyList<string>)[p.Measure, ours[i], p.Paper]);
    }

    static IReadOnlyList<string> EndRow(ComparedRun run, bool seeded)
    {
        var s = run.Profile!.Sublayers;
        var saturation = s.Where(d => d.Saturation is not null).Select(d => d.Saturation!.Value).DefaultIfEmpty(double.NaN).Average();
        return
        [
            seeded ? $"{run.Kind} s{run.Seed}" : run.Kind, F(s.Max(d => d.CompositeForwardGainOfMean), 3), F(s.Max(d => d.CompositeBackwardGainOfMean), 3), F(s.Max(d => d.ForwardGain), 3),
            F(s.Max(d => d.DoublyStochasticError), 4), $"{s.Min(d => d.PreMin):F3} … {s.Max(d => d.PreMax):F3}",
            $"{s.Min(d => d.PostMin):F3} … {s.Max(d => d.PostMax):F3}", double.IsNaN(saturation) ? "–" : $"{saturation:P1}", F(s.Average(d => d.StateCosine), 3),
            F(s.Average(d => d.StreamDiversity), 4), F(s.Average(d => d.ResOffDiagonalMass), 4),
            $"{F(s.Min(d => d.SignalGain), 3)} … {F(s.Max(d => d.SignalGain), 3)}", F(s.Max(d => d.SignalIdentityError), 3),
        ];
    }

    // Gains can reach 1e9 and beyond: those read better as 6.79e+09 than as ten digits.
    static string F(double v, int digits = 4) => double.IsFinite(v)
        ? Math.Abs(v) >= 1e6 ? v.ToString("0.00e+00", System.Globalization.CultureInfo.InvariantCulture) : v.ToString($"F{digits}")
        : double.IsNaN(v) ? "–" : v.ToString();

    static string Signed(double v) => double.IsFinite(v) ? v.ToString("+0.0000;−0.0000;0.0000") : "–";
}
