using System.CommandLine;
using System.Globalization;
using Mhc.Connections;
using Mhc.Diagnostics;
using Mhc.Training;

namespace Mhc.Cli;

/// <summary><c>mhc train</c>: trains a GPT-style language model with any connection kind and prints a summary.</summary>
static class TrainCommand
{
    public static Command Create()
    {
        var run = new RunOptions();
        var connection = new Option<string?>("--connection") { Description = $"The kind: one of {string.Join(", ", ConnectionKindNames.All)} (default mhc; docs/connections.md)." };
        var output = new Option<string?>("--out") { Description = "Run directory (default runs/<connection>-<time>)." };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its newest intact checkpoint." };
        var initFrom = new Option<string?>("--init-from") { Description = "Start from the weights of this file (.safetensors or .pt, hf or mhcnet layout) with a fresh optimizer." };
        var command = new Command("train", "Train a GPT-style language model on a text file or folder, or on the built-in synthetic language.");
        foreach (var option in run.All) command.Options.Add(option);
        command.Options.Add(connection);
        command.Options.Add(output);
        command.Options.Add(resume);
        command.Options.Add(initFrom);
        command.SetAction(parse => CliErrors.Run(parse.GetValue(GlobalOptions.Verbose), () =>
        {
            var kind = parse.GetValue(connection) is { } name ? ConnectionKindNames.Parse(name) : (ConnectionKind?)null;
            var isResume = parse.GetValue(resume);
            var outDir = parse.GetValue(output) is { } given ? RunOptions.OutputDirectory(given) : null;
            if (isResume && outDir is null) throw new ArgumentException("--resume needs --out: the run directory to continue.");
            if (isResume && !Directory.Exists(outDir)) throw new ArgumentException($"--out '{outDir}' does not exist: nothing to resume (drop --resume to start a new run there).");
            var stored = isResume && outDir is not null ? RunConfig.Stored(outDir) : null;
            var config = run.Build(parse, kind, stored);
            config.Validate();
            Devices.Resolve(config.Training.Device);   // before anything is written
            if (parse.GetValue(initFrom) is { } weights)
                config = config with { Training = config.Training with { InitFrom = Path.GetFullPath(weights) } };
            config.Validate();
            TrainingMemory.EnsureFits(config);
            var kindName = config.Connection.Kind.ToName();
            outDir ??= Path.Combine("runs", $"{(config.Task == RunConfig.Vision ? "vit-" : "")}{kindName}-{DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}");
            using var stop = new StopRequest();
            var summary = Train(config, outDir, isResume, kindName, stop.Token);
            PrintSummary(summary);
            return stop.IsRequested ? stop.ExitCode : ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>Loads the data, trains under the progress display, returns the summary.</summary>
    public static (TrainingSummary Summary, RunConfig Config) Train(RunConfig config, string outDir, bool resume, string label, CancellationToken cancellation)
    {
        var prepared = Prepare(config, CacheBeside(outDir));
        config = prepared.Config;
        var summary = TrainingDisplay.Run<TrainingSummary>(
        [
            (label, config.Training.Steps, attach =>
            {
                var trainer = new Trainer(config, outDir, () => prepared.Create(config)) { Diagnose = TrainingDiagnostics.Hook(outDir), DataFingerprint = prepared.DataFingerprint };
                attach(trainer);
                return trainer.Run(resume, cancellation);
            }),
        ])[0];
        return (summary, config);
    }

    /// <summary>Loads the run's data (printing what it is) and resolves the config against it.</summary>
    public static PreparedTask Prepare(RunConfig config, string cacheDirectory)
    {
        var prepared = TrainingTasks.Prepare(config, cacheDirectory);
        Console.WriteLine($"data: {prepared.DataDescription}");
        return prepared;
    }

    /// <summary>Tokenised text is cached beside the run directory: <c>&lt;parent&gt;/.token-cache</c>.</summary>
    public static string CacheBeside(string runDirectory) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(runDirectory)) ?? ".", ".token-cache");

    static void PrintSummary((TrainingSummary Summary, RunConfig Config) result)
    {
        var (s, config) = result;
        var rows = new List<(string, string)>
        {
            ("run", s.RunDirectory),
            ("model", $"{RunDescription.Model(config)}, {s.Parameters / 1e6:F2}M parameters"),
            ("steps", s.Steps.ToString(CultureInfo.InvariantCulture)),
            ("final train loss", string.Create(CultureInfo.InvariantCulture, $"{s.FinalTrainLoss:F4} (mean of the last 10 steps)")),
            ("final val loss", config.Task == RunConfig.Vision
                ? $"{s.FinalValLoss:F4} (top-1 accuracy {s.FinalValAccuracy:P1})"
                : $"{s.FinalValLoss:F4} (perplexity {Math.Exp(s.FinalValLoss):F2})"),
        };
        if (s.OptimalValLoss is { } optimum)
            rows.Add(("corpus optimum", string.Create(CultureInfo.InvariantCulture, $"{optimum:F4} (gap {s.FinalValLoss - optimum:F4})")));
        rows.Add(("throughput", string.Create(CultureInfo.InvariantCulture, $"{s.TokensPerS:N0} tokens/s")));
        rows.Add(("time", TrainingDisplay.Duration(s.ElapsedS)));
        foreach (var (key, value) in rows) Console.WriteLine($"{key,-18}{value}");
    }
}
