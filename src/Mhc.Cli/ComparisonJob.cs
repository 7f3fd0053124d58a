using System.Text.Json;
using Mhc.Cli.Reports;
using Mhc.Diagnostics;
using Mhc.IO;
using Mhc.Training;

namespace Mhc.Cli;

/// <summary>
/// One training run of a comparison or a sweep, as a job for <see cref="TrainingDisplay"/>. A run that diverges is a result,
/// not an error. With <c>resumable</c> a run already finished is read back instead of trained again, and one that was
/// stopped continues from its newest checkpoint: a killed sweep picks up where it stopped. After Ctrl+C or SIGTERM the run under
/// way is marked interrupted, and the runs after it are not started (the job returns null and creates no folder).
/// </summary>
static class ComparisonJob
{
    /// <summary>Written into a run directory when its run has finished (or diverged): what the report needs beyond the run's files.</summary>
    const string DoneFile = "run.json";

    sealed record Done(string Kind, int Seed, long Parameters, double? OptimalValLoss, double TokensPerS, double PeakMemoryMb, string? Failure,
        string? DataFingerprint = null);

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static (string Label, long Steps, Func<Action<Trainer>, ComparedRun?> Job) Create(PreparedTask prepared, RunConfig config, string kind, int seed,
        string runDir, string label, bool resumable, CancellationToken cancellation) =>
        (label, config.Training.Steps, attach =>
        {
            if (cancellation.IsCancellationRequested) return null;
            var donePath = Path.Combine(runDir, DoneFile);
            if (resumable && File.Exists(donePath))
            {
                var finished = JsonSerializer.Deserialize<Done>(File.ReadAllText(donePath), Json)!;
                // A finished run of other data must not join the new runs in one report (runs from before fingerprints pass).
                if (finished.DataFingerprint is { } then && prepared.DataFingerprint is { } now && then != now)
                    throw new InvalidDataException($"data '{config.Data.Path}' has changed since the finished run in '{runDir}' was trained on it " +
                        $"(fingerprint {now}; the run has {then}): restore that data to continue, or start again in another directory.");
                return Read(runDir, finished);
            }
            ProcessMemory.ResetPeak();
            var trainer = new Trainer(config, runDir, () => prepared.Create(config)) { Diagnose = TrainingDiagnostics.Hook(runDir), DataFingerprint = prepared.DataFingerprint };
            attach(trainer);
            TrainingSummary summary;
            string? failure = null;
            try
            {
                summary = trainer.Run(resume: resumable && File.Exists(Path.Combine(runDir, Trainer.ConfigFile)), cancellation);
            }
            catch (NonFiniteException e)
            {
                // Divergence is a result of the comparison, not an error of the tool.
                failure = $"stopped at step {e.Step}: the {e.Quantity} was not finite";
                Console.Error.WriteLine($"{label}: {failure}");
                summary = Trainer.Summarize(runDir, 0, null);
            }
            var done = new Done(kind, seed, summary.Parameters, summary.OptimalValLoss, summary.TokensPerS, ProcessMemory.Peak() / (1024.0 * 1024), failure,
                prepared.DataFingerprint);
            if (failure is not null || summary.Steps >= config.Training.Steps) AtomicFile.WriteAllText(donePath, JsonSerializer.Serialize(done, Json));
            // The trainer stops short of its steps only on a non-finite value or when asked to stop.
            return Read(runDir, done) with { Interrupted = failure is null && summary.Steps < config.Training.Steps };
        });

    static ComparedRun Read(string runDir, Done done) =>
        new(done.Kind, Trainer.Summarize(runDir, done.Parameters, done.OptimalValLoss, done.TokensPerS), MetricsLog.Read(Path.Combine(runDir, MetricsLog.FileName)),
            StabilityProfile.Load(Path.Combine(runDir, StabilityProfile.FileName)), done.PeakMemoryMb, done.Failure, done.Seed);
}
