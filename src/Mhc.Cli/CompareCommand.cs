using System.CommandLine;
using System.Globalization;
using Mhc.Cli.Reports;
using Mhc.Connections;
using Mhc.Diagnostics;
using Mhc.Training;

namespace Mhc.Cli;

/// <summary>
/// <c>mhc compare</c>: trains one configuration with several connection kinds on the same data, seed and
/// token budget, one after another, then writes report.md / report.html / report.json and PNG charts.
/// </summary>
static class CompareCommand
{
    public static Command Create()
    {
        var run = new RunOptions();
        var kinds = new Option<string>("--kinds") { Description = $"Comma-separated kinds among {string.Join(", ", ConnectionKindNames.All)} (docs/connections.md).", DefaultValueFactory = _ => "residual,hc,mhc" };
        var preset = new Option<string?>("--preset") { Description = "deep: 32 sub-layers and a high learning rate, where HC's gain grows; spike: a narrow 32-sub-layer model at a high learning rate without warm-up or clipping, where HC's loss spikes." };
        var output = new Option<string?>("--out") { Description = "Output directory (default runs/compare-<time>); one sub-folder per kind." };
        var seeds = new Option<int?>("--seeds") { Description = "Train every kind at k seeds (--seed, --seed + 1, …; default 1) and report means and paired 95% intervals." };
        var seedList = new Option<string?>("--seed-list") { Description = "The seeds to train every kind at, e.g. 0,1,2 (instead of --seeds)." };
        var command = new Command("compare", "Train the same model with residual, HC and mHC connections and write a stability report with plots.");
        foreach (var option in run.All) command.Options.Add(option);
        command.Options.Add(kinds);
        command.Options.Add(preset);
        command.Options.Add(output);
        command.Options.Add(seeds);
        command.Options.Add(seedList);
        command.SetAction(parse => CliErrors.Run(parse.GetValue(GlobalOptions.Verbose), () =>
        {
            var presetName = parse.GetValue(preset);
            if (presetName is not null && parse.GetValue(run.Config) is not null)
                throw new ArgumentException("--preset and --config cannot be combined: a preset is a config; pass options to change it.");
            var basis = presetName is null ? null : Presets.Named(presetName);
            var config = run.Build(parse, kind: null, basis);
            config.Validate();
            Devices.Resolve(config.Training.Device);   // before anything is written
            var kindList = parse.GetValue(kinds)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(ConnectionKindNames.Parse).Distinct().ToList();
            if (kindList.Count == 0) throw new ArgumentException($"--kinds is empty: name at least one of {string.Join(", ", ConnectionKindNames.All)}.");
            foreach (var kind in kindList) TrainingMemory.EnsureFits(config.WithConnection(RunOptions.WithKind(config.Connection, kind, parse.GetValue(run.Streams))));
            var outDir = parse.GetValue(output) is { } given ? RunOptions.OutputDirectory(given) : Path.Combine("runs", $"compare-{DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}");
            if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any(e => !Path.GetFileName(e).StartsWith('.')))
                throw new ArgumentException($"output directory '{outDir}' is not empty; choose another --out.");
            var seedValues = Seeds(parse.GetValue(seeds), parse.GetValue(seedList), config.Training.Seed);
            using var cancellation = new StopRequest();
            (var runs, var notStarted, config) = Run(config, kindList, parse.GetValue(run.Streams), outDir, seedValues, cancellation.Token);
            if (runs.Count == 0)
            {
                Console.Error.WriteLine("stopped before the first run started; no report written.");
                return cancellation.ExitCode;
            }
            var figures = Comparison.Figures(runs);
            var command = "mhc " + string.Join(' ', CliApp.Arguments.Select(Quote));
            ComparisonReport.Write(outDir, config, runs, figures, command, notStarted);
            ComparisonReport.PrintTable(figures, Comparison.Baseline(runs), notStarted);
            Console.WriteLine($"report: {Path.Combine(outDir, "report.md")} (and report.html, report.json, *.png)");
            return cancellation.IsRequested ? cancellation.ExitCode : ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>The seeds to run: <paramref name="list"/> if given, else <paramref name="count"/> consecutive ones from <paramref name="first"/>.</summary>
    static List<int> Seeds(int? count, string? list, int first)
    {
        if (count is not null && list is not null) throw new ArgumentException("--seeds and --seed-list cannot be combined: give the count or the seeds.");
        if (list is not null)
        {
            var values = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v
                    : throw new ArgumentException($"--seed-list: '{s}' is not a seed (a whole number >= 0).")).ToList();
            if (values.Count is 0 or > 100 || values.Distinct().Count() != values.Count)
                throw new ArgumentException($"--seed-list = '{list}' is out of range: allowed 1..100 distinct seeds.");
            return values;
        }
        var k = count ?? 1;
        if (k is < 1 or > 100) throw new ArgumentException($"--seeds = {k} is out of range: allowed 1..100.");
        return Enumerable.Range(first, k).ToList();
    }

    /// <summary>
    /// Trains every kind at every seed, seed by seed; returns the runs, those not started because the comparison was stopped,
    /// and the config as resolved against the data. One seed: <c>&lt;out&gt;/&lt;kind&gt;/</c>; several: <c>&lt;out&gt;/&lt;kind&gt;/seed-&lt;s&gt;/</c>.
    /// </summary>
    static (List<ComparedRun> Runs, List<NotStartedRun> NotStarted, RunConfig Config) Run(RunConfig config, IReadOnlyList<ConnectionKind> kinds, int? streams,
        string outDir, List<int> seeds, CancellationToken cancellation)
    {
        var prepared = TrainCommand.Prepare(config, Path.Combine(outDir, ".token-cache"));
        var planned = seeds.SelectMany(seed => kinds.Select(kind => (Seed: seed, Kind: kind))).ToList();
        var jobs = planned.Select(job =>
        {
            var (seed, kind) = job;
            var kindConfig = prepared.Config.WithConnection(RunOptions.WithKind(prepared.Config.Connection, kind, streams));
            kindConfig = kindConfig with { Training = kindConfig.Training with { Seed = seed } };
            var runDir = seeds.Count == 1 ? Path.Combine(outDir, kind.ToName()) : Path.Combine(outDir, kind.ToName(), $"seed-{seed}");
            var label = seeds.Count == 1 ? kind.ToName() : $"{kind.ToName()} s{seed}";
            return ComparisonJob.Create(prepared, kindConfig, kind.ToName(), seed, runDir, label, resumable: false, cancellation);
        }).ToList();
        var results = TrainingDisplay.Run(jobs);
        var notStarted = planned.Where((_, i) => results[i] is null).Select(p => new NotStartedRun(p.Kind.ToName(), p.Seed)).ToList();
        return (results.OfType<ComparedRun>().ToList(), notStarted, prepared.Config);
    }

    static string Quote(string arg) => arg.Length > 0 && arg.All(c => char.IsLetterOrDigit(c) || "-_./=:,".Contains(c)) ? arg : $"'{arg}'";
}

/// <summary>Named starting configurations of <c>mhc compare</c>.</summary>
static class Presets
{
    /// <summary>
    /// 16 blocks = 32 sub-layers and a learning rate 5× the default: depth and an aggressive optimiser are
    /// what expose HC's compounding mixing (spec §9.7). The report states whatever happens.
    /// </summary>
    public static RunConfig Deep { get; } = new()
    {
        Model = new() { DModel = 96, Layers = 16, Heads = 4, SeqLen = 64 },
        Training = new() { Steps = 300, BatchSize = 16, LearningRate = 1e-2, WarmupSteps = 20, EvalEvery = 25 },
    };

    /// <summary>
    /// A narrow 32-sub-layer model hit at once by a high learning rate, with neither warm-up nor gradient clipping (the two
    /// guards that hide instability): HC's loss spikes within its first steps and HC trains poorly afterwards, while mHC
    /// and the residual network do not spike (docs/results.md). Small, so all three kinds take minutes.
    /// </summary>
    public static RunConfig Spike { get; } = new()
    {
        Model = new() { DModel = 32, Layers = 16, Heads = 2, SeqLen = 32 },
        Training = new() { Steps = 150, BatchSize = 8, LearningRate = 6e-2, WarmupSteps = 0, GradClip = 0, EvalEvery = 50 },
    };

    /// <summary>The preset called <paramref name="name"/>.</summary>
    public static RunConfig Named(string name) => name switch
    {
        "deep" => Deep,
        "spike" => Spike,
        _ => throw new ArgumentException($"--preset = '{name}' is unknown: allowed deep, spike."),
    };
}
