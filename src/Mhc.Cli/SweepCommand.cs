using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Mhc.Cli.Reports;
using Mhc.Connections;
using Mhc.IO;
using Mhc.Training;

namespace Mhc.Cli;

/// <summary>
/// <c>mhc sweep --param NAME=v1,v2,…</c>: the comparison of <c>mhc compare</c> at every value of one setting (and every
/// seed), then sweep.json / sweep.md / sweep.html and one chart per figure against the setting. Resumable: run again with
/// the same <c>--out</c> and finished runs are read back, a stopped one continues from its checkpoint.
/// </summary>
static class SweepCommand
{
    /// <summary>The settings a sweep can vary, with how each is set in a run config.</summary>
    static readonly Dictionary<string, Func<RunConfig, double, RunConfig>> Parameters = new()
    {
        ["layers"] = (c, v) => c with { Model = c.Model with { Layers = Whole(v, "layers") } },
        ["d_model"] = (c, v) => c with { Model = c.Model with { DModel = Whole(v, "d_model") } },
        ["streams"] = (c, v) => c with { Model = c.Model with { Connection = c.Model.Connection with { Streams = Whole(v, "streams") } } },
        ["sinkhorn_iterations"] = (c, v) => c with { Model = c.Model with { Connection = c.Model.Connection with { SinkhornIterations = Whole(v, "sinkhorn_iterations") } } },
        ["lr"] = (c, v) => c with { Training = c.Training with { LearningRate = v } },
        ["steps"] = (c, v) => c with { Training = c.Training with { Steps = Whole(v, "steps") } },
    };

    public static Command Create()
    {
        var run = new RunOptions();
        var param = new Option<string>("--param") { Description = $"NAME=v1,v2,…; NAME one of {string.Join(", ", Parameters.Keys)}.", Required = true };
        var kinds = new Option<string>("--kinds") { Description = $"Comma-separated kinds among {string.Join(", ", ConnectionKindNames.All)} (docs/connections.md).", DefaultValueFactory = _ => "residual,hc,mhc" };
        var seeds = new Option<int?>("--seeds") { Description = "Seeds per value and kind (--seed, --seed + 1, …; default 1)." };
        var output = new Option<string?>("--out") { Description = "Output directory (default runs/sweep-<name>-<time>); run again with it to resume." };
        var command = new Command("sweep", "Compare the kinds at every value of one setting (layers, d_model, streams, sinkhorn_iterations, lr, steps) and chart the figures against it.");
        foreach (var option in run.All) command.Options.Add(option);
        foreach (var option in new Option[] { param, kinds, seeds, output }) command.Options.Add(option);
        command.SetAction(parse => CliErrors.Run(parse.GetValue(GlobalOptions.Verbose), () =>
        {
            var (name, values) = Parse(parse.GetValue(param)!);
            if (name == "streams" && parse.GetValue(run.Streams) is not null) throw new ArgumentException("--streams is what --param streams=… varies; drop one.");
            var basis = run.Build(parse, kind: null);
            if (basis.Task != RunConfig.Language) throw new ArgumentException("mhc sweep runs the language task (--task language).");
            var kindList = parse.GetValue(kinds)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(ConnectionKindNames.Parse).Distinct().ToList();
            if (kindList.Count == 0) throw new ArgumentException($"--kinds is empty: name at least one of {string.Join(", ", ConnectionKindNames.All)}.");
            var seedCount = parse.GetValue(seeds) ?? 1;
            if (seedCount is < 1 or > 100) throw new ArgumentException($"--seeds = {seedCount} is out of range: allowed 1..100.");
            var seedValues = Enumerable.Range(basis.Training.Seed, seedCount).ToList();
            // Every configuration is checked before anything runs.
            var configs = values.Select(v => (Value: v, Config: Parameters[name](basis, v))).ToList();
            foreach (var (value, config) in configs)
                foreach (var kind in kindList) Checked(config.WithConnection(RunOptions.WithKind(config.Connection, kind, null)), name, value);
            Devices.Resolve(basis.Training.Device);
            var outDir = parse.GetValue(output) is { } given ? RunOptions.OutputDirectory(given) : Path.Combine("runs", $"sweep-{name}-{DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}");
            using var cancellation = new StopRequest();
            var prepared = TrainCommand.Prepare(basis, Path.Combine(outDir, ".token-cache"));
            var jobs = configs.SelectMany(c => seedValues.SelectMany(seed => kindList.Select(kind =>
            {
                var config = c.Config with { Model = c.Config.Model with { VocabSize = prepared.Config.Model.VocabSize } };
                config = config.WithConnection(RunOptions.WithKind(config.Connection, kind, null));
                config = config with { Training = config.Training with { Seed = seed } };
                var runDir = Path.Combine(outDir, $"{name}={Text(c.Value)}", kind.ToName(), $"seed-{seed}");
                var job = ComparisonJob.Create(prepared, config, kind.ToName(), seed, runDir, $"{name}={Text(c.Value)} {kind.ToName()} s{seed}", resumable: true, cancellation.Token);
                // null when the run was not started (stopped before it), which the display shows as such.
                return (job.Label, job.Steps, (Func<Action<Trainer>, (double Value, ComparedRun Run)?>)(attach => job.Job(attach) is { } run ? (c.Value, run) : null));
            }))).ToList();
            var runs = TrainingDisplay.Run(jobs);
            if (cancellation.IsRequested)
            {
                Console.Error.WriteLine($"stopped; run the same command with --out {outDir} to continue.");
                return cancellation.ExitCode;
            }
            // Not stopped, so every run was started and finished.
            var rows = runs.Select(r => r!.Value).GroupBy(r => r.Value).SelectMany(g => Comparison.Figures(g.Select(x => x.Run).ToList()).Select(f => new SweepRow(name, g.Key, f))).ToList();
            var command = "mhc " + string.Join(' ', CliApp.Arguments);
            SweepReport.Write(outDir, name, rows, command);
            Console.WriteLine($"sweep: {Path.Combine(outDir, "sweep.md")} (and sweep.html, sweep.json, *.png)");
            return ExitCodes.Success;
        }));
        return command;
    }

    static (string Name, List<double> Values) Parse(string text)
    {
        var parts = text.Split('=', 2);
        if (parts.Length != 2 || !Parameters.ContainsKey(parts[0].Trim()))
            throw new ArgumentException($"--param = '{text}' is not NAME=v1,v2,…: NAME one of {string.Join(", ", Parameters.Keys)}.");
        var values = parts[1].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(v => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && double.IsFinite(x) ? x
                : throw new ArgumentException($"--param {parts[0]}: '{v}' is not a number.")).ToList();
        if (values.Count is 0 or > 50 || values.Distinct().Count() != values.Count)
            throw new ArgumentException($"--param {parts[0]}: give 1..50 distinct values.");
        return (parts[0].Trim(), values);
    }

    static int Whole(double value, string name) =>
        value == Math.Floor(value) && value is >= 1 and <= int.MaxValue ? (int)value
            : throw new ArgumentException($"--param {name}: {Text(value)} is not a whole number >= 1.");

    static void Checked(RunConfig config, string name, double value)
    {
        try
        {
            config.Validate();
            TrainingMemory.EnsureFits(config);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"--param {name}={Text(value)}: {e.Message}", e);
        }
    }

    internal static string Text(double value) => value.ToString("G6", CultureInfo.InvariantCulture);
}

/// <summary>One row of sweep.json: the compare figures of one run, with the swept setting and its value.</summary>
sealed record SweepRow(string Parameter, double Value, [property: JsonIgnore] KindFigures Figures)
{
    /// <summary>The figures' keys (kind, seed, final_val_loss, …), beside the parameter and its value.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement> Keys => JsonSerializer.SerializeToElement(Figures, SweepReport.Json).EnumerateObject()
        .ToDictionary(p => p.Name, p => p.Value);
}

/// <summary>sweep.json, sweep.md / sweep.html and the charts of a sweep.</summary>
static class SweepReport
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static void Write(string outDir, string parameter, List<SweepRow> rows, string command)
    {
        AtomicFile.WriteAllText(Path.Combine(outDir, "sweep.json"), JsonSerializer.Serialize(new { command, parameter, rows }, Json));
        var charts = new (string Caption, string File, string Label, Func<KindFigures, double?> Value, bool Log)[]
        {
            ("Final validation loss", "sweep_val_loss.png", "final validation loss", f => f.FinalValLoss, false),
            ("Largest composite forward gain over training (log scale)", "sweep_composite_gain.png", "max composite forward gain", f => f.MaxCompositeForwardGain, true),
            ("Step time relative to residual", "sweep_step_time.png", "step time / residual", f => f.StepTimeRatioToResidual, false),
        };
        foreach (var chart in charts)
            Plots.AgainstParameter(rows.Select(r => (r.Figures.Kind, r.Figures.Seed, r.Value, chart.Value(r.Figures))).ToList(), parameter, chart.Caption, chart.Label, chart.Log,
                Path.Combine(outDir, chart.File));
        var seeds = rows.Select(r => r.Figures.Seed).Distinct().Count();
        var document = new ReportDocument()
            .Heading1($"mHC.NET sweep over {parameter}")
            .Text($"Values {string.Join(", ", rows.Select(r => r.Value).Distinct().Select(SweepCommand.Text))}; kinds {string.Join(", ", rows.Select(r => r.Figures.Kind).Distinct())}; " +
                  $"{seeds} seed{(seeds == 1 ? "" : "s")} each. Lines are means over seeds, bands the lowest to the highest.")
            .Heading2("Every run")
            .Table([parameter, "kind", "seed", "final val loss", "gap to baseline", "max composite fwd gain", "step time / residual"],
                rows.Select(r => (IReadOnlyList<string>)[SweepCommand.Text(r.Value), r.Figures.Kind, r.Figures.Seed.ToString(CultureInfo.InvariantCulture),
                    r.Figures.FinalValLoss.ToString("F4", CultureInfo.InvariantCulture), r.Figures.GapToBaseline.ToString("+0.0000;−0.0000;0.0000", CultureInfo.InvariantCulture),
                    r.Figures.MaxCompositeForwardGain.ToString("F3", CultureInfo.InvariantCulture),
                    r.Figures.StepTimeRatioToResidual is { } t ? t.ToString("F2", CultureInfo.InvariantCulture) : "–"]))
            .Heading2("Charts");
        foreach (var chart in charts) document.Figure(chart.Caption, chart.File);
        document.Heading2("Reproduce").CodeBlock("sh", command);
        AtomicFile.WriteAllText(Path.Combine(outDir, "sweep.md"), document.ToMarkdown());
        AtomicFile.WriteAllText(Path.Combine(outDir, "sweep.html"), document.ToHtml($"mHC.NET sweep over {parameter}", outDir));
    }
}
