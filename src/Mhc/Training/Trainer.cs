using Mhc.IO;
using System.Diagnostics;
using Mhc.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>Progress of a run after a step, for displays.</summary>
/// <param name="Step">Completed optimizer steps.</param>
/// <param name="TotalSteps">Steps of the whole run.</param>
/// <param name="TrainLoss">This step's training loss.</param>
/// <param name="ValLoss">Latest validation loss, if any yet.</param>
/// <param name="Lr">Learning rate of this step.</param>
/// <param name="TokensPerS">Recent training throughput.</param>
/// <param name="ElapsedS">Wall time of the run.</param>
public sealed record TrainingProgress(long Step, long TotalSteps, double TrainLoss, double? ValLoss, double Lr, double TokensPerS, double ElapsedS);

/// <summary>How a run ended.</summary>
/// <param name="RunDirectory">Where its files are.</param>
/// <param name="Steps">Completed optimizer steps.</param>
/// <param name="Parameters">Trainable parameters of the model.</param>
/// <param name="FinalTrainLoss">Mean training loss of the last (up to) 10 steps.</param>
/// <param name="FinalValLoss">Validation loss at the end.</param>
/// <param name="FinalValAccuracy">Validation accuracy at the end (classifiers).</param>
/// <param name="OptimalValLoss">Best achievable validation loss, when the data's distribution is known.</param>
/// <param name="TokensPerS">Mean training throughput (evaluation and checkpoints excluded).</param>
/// <param name="ElapsedS">Wall time of the whole run, across resumes.</param>
public sealed record TrainingSummary(string RunDirectory, long Steps, long Parameters, double FinalTrainLoss, double FinalValLoss,
    double? FinalValAccuracy, double? OptimalValLoss, double TokensPerS, double ElapsedS);

/// <summary>
/// Trains an <see cref="ITrainingTask"/> with AdamW: warm-up and decay of the learning rate, gradient
/// accumulation and clipping, periodic evaluation, a metrics log, checkpoints and exact resume. Every
/// step runs inside its own dispose scope, so memory stays flat.
/// </summary>
public sealed class Trainer
{
    /// <summary>The run's configuration file inside the run directory.</summary>
    public const string ConfigFile = "config.json";

    readonly RunConfig config;
    readonly string runDirectory;
    readonly Func<ITrainingTask> createTask;

    /// <summary>Prepares a run.</summary>
    /// <param name="config">Run configuration; validated here.</param>
    /// <param name="runDirectory">Where config, metrics and checkpoints go.</param>
    /// <param name="createTask">Builds the task; called after the seed is set, so initialisation is reproducible.</param>
    public Trainer(RunConfig config, string runDirectory, Func<ITrainingTask> createTask)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(runDirectory);
        ArgumentNullException.ThrowIfNull(createTask);
        config.Validate();
        this.config = config;
        this.runDirectory = runDirectory;
        this.createTask = createTask;
    }

    /// <summary>Raised after every step.</summary>
    public event Action<TrainingProgress>? Progress;

    /// <summary>Raised for recoverable problems (a damaged checkpoint skipped, a step skipped).</summary>
    public event Action<string>? Warning;

    /// <summary>
    /// Measures stability diagnostics of the task after a step (on evaluation steps and every
    /// <see cref="TrainingOptions.DiagnosticsEvery"/> steps); the values go into that step's metrics line.
    /// </summary>
    public Func<ITrainingTask, long, DiagnosticsSummary?>? Diagnose { get; init; }

    /// <summary>
    /// The data's <see cref="Training.DataFingerprint"/>, kept in every checkpoint; a resume whose data differs from the
    /// checkpoint's is refused. Null = not known (nothing is checked).
    /// </summary>
    public string? DataFingerprint { get; init; }

    /// <summary>Runs (or, with <paramref name="resume"/>, continues) training to the configured step count.</summary>
    /// <param name="resume">Continue from the newest intact checkpoint of the run directory.</param>
    /// <param name="cancellation">Stops after the current step; the run can be resumed from its last checkpoint.</param>
    public TrainingSummary Run(bool resume, CancellationToken cancellation = default)
    {
        var options = config.Training;
        TrainingMemory.EnsureFits(config);   // before the run directory is touched
        if (File.Exists(runDirectory)) throw new ArgumentException($"run directory '{runDirectory}' is a file; expected a directory.");
        if (resume && !Directory.Exists(runDirectory))
            throw new ArgumentException($"run directory '{runDirectory}' does not exist: nothing to resume.");
        torch.set_num_threads(options.Threads > 0 ? options.Threads : Environment.ProcessorCount);
        using var runLock = RunLock.Acquire(runDirectory);
        var metrics = new MetricsLog(runDirectory);
        var checkpoint = PrepareDirectory(resume, metrics);

        torch.manual_seed(options.Seed);
        using var task = createTask();
        var model = task.Model;
        model.train();
        using var optimizer = CreateOptimizer(model, options);
        long start = 0;
        var elapsedBefore = 0.0;
        if (checkpoint is not null)
        {
            checkpoint.LoadModel(model);
            checkpoint.LoadOptimizer(optimizer);
            checkpoint.RestoreRng();
            start = checkpoint.State.Step;
            elapsedBefore = checkpoint.State.ElapsedS;
            metrics.TruncateAfter(start);
        }
        else
        {
            // A fresh run may start from given weights; a resumed one has them in its checkpoint already.
            if (options.InitFrom is { } weights) Interop.ModelWeights.Load(model, weights);
            // Written once the model exists: a run that cannot start leaves no directory that "holds a run".
            AtomicFile.WriteAllText(Path.Combine(runDirectory, ConfigFile), config.ToJson());
            metrics.Reset();
        }
        var lastCheckpoint = checkpoint?.Directory;
        var parameters = model.parameters().Sum(p => p.numel());
        var optimal = task.OptimalValidationLoss(options.EvalBatches);

        var clock = Stopwatch.StartNew();
        var completed = start;
        var lastSaved = start;
        void SaveCheckpoint(long step)
        {
            lastCheckpoint = Checkpoint.Save(runDirectory, model, optimizer, new CheckpointState
            {
                Step = step,
                ElapsedS = elapsedBefore + clock.Elapsed.TotalSeconds,
                RngState = Checkpoint.CaptureRng(),
                Config = config,
                DataFingerprint = DataFingerprint,
            });
            lastSaved = step;
        }
        var trainingSeconds = 0.0;
        var trainingTokens = 0L;
        var sinceLog = (Seconds: 0.0, Tokens: 0L);
        Evaluation? evaluation = null;
        for (var step = start; step < options.Steps && !cancellation.IsCancellationRequested; step++)
        {
            var lr = LearningRateSchedule.At(options, step);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;

            var stepClock = Stopwatch.StartNew();
            double loss, gradNorm;
            bool skipped;
            // One scope for the whole step, optimizer update included: its temporaries are freed here, not by finalizers.
            using (var stepScope = NewDisposeScope())
            {
                (loss, gradNorm) = ForwardBackward(task, optimizer, options, step);
                skipped = !double.IsFinite(loss) || !double.IsFinite(gradNorm);
                if (skipped)
                {
                    var (quantity, value) = !double.IsFinite(loss) ? ("loss", loss) : ("gradient norm", gradNorm);
                    if (!options.SkipNonFinite) throw new NonFiniteException(step + 1, quantity, value, lastCheckpoint);
                    Warning?.Invoke($"step {step + 1}: the {quantity} is {value}; step skipped (training.skip_nonfinite).");
                }
                else optimizer.step();
            }
            var stepSeconds = stepClock.Elapsed.TotalSeconds;
            var tokens = task.TokensPerMicroBatch * options.GradAccumulation;
            trainingSeconds += stepSeconds;
            trainingTokens += tokens;
            sinceLog = (sinceLog.Seconds + stepSeconds, sinceLog.Tokens + tokens);

            var done = step + 1;
            var last = done == options.Steps;
            evaluation = done % options.EvalEvery == 0 || last ? task.Evaluate(options.EvalBatches) : null;
            var diagnose = Diagnose is not null && (evaluation is not null || (options.DiagnosticsEvery > 0 && done % options.DiagnosticsEvery == 0));
            if (done % options.LogEvery == 0 || evaluation is not null || last || skipped || diagnose)
            {
                metrics.Append(new MetricsRecord
                {
                    Step = done,
                    TrainLoss = loss,
                    ValLoss = evaluation?.Loss,
                    ValAccuracy = evaluation?.Accuracy,
                    Lr = lr,
                    GradNorm = gradNorm,
                    TokensPerS = sinceLog.Tokens / Math.Max(sinceLog.Seconds, 1e-9),
                    StepMs = stepSeconds * 1000,
                    ElapsedS = elapsedBefore + clock.Elapsed.TotalSeconds,
                    Skipped = skipped ? true : null,
                    Diagnostics = diagnose ? Diagnose!(task, done) : null,
                });
                sinceLog = (0, 0);
            }
            Progress?.Invoke(new TrainingProgress(done, options.Steps, loss, evaluation?.Loss, lr,
                tokens / Math.Max(stepSeconds, 1e-9), elapsedBefore + clock.Elapsed.TotalSeconds));
            completed = done;
            var save = done % options.CheckpointEvery == 0 || last;
            if (save) SaveCheckpoint(done);
            // Evaluation, probes and checkpoints allocate tensors of other shapes, which fragments the C
            // allocator's arenas; handing the free pages back keeps resident memory flat (README, Reliability).
            if (evaluation is not null || diagnose || save) ProcessMemory.Trim();
        }

        // Stopped early: checkpoint the last completed step so a resume loses nothing.
        if (completed > start && lastSaved != completed) SaveCheckpoint(completed);
        return Summarize(runDirectory, parameters, optimal, trainingTokens / Math.Max(trainingSeconds, 1e-9));
    }

    /// <summary>The summary of the run in <paramref name="runDirectory"/>, from its metrics log (also for runs that stopped early).</summary>
    /// <param name="runDirectory">Run directory.</param>
    /// <param name="parameters">Trainable parameters of the model.</param>
    /// <param name="optimal">Best achievable validation loss, if known.</param>
    /// <param name="tokensPerS">Mean throughput; null = mean of the logged throughputs.</param>
    public static TrainingSummary Summarize(string runDirectory, long parameters, double? optimal, double? tokensPerS = null)
    {
        var records = MetricsLog.Read(Path.Combine(runDirectory, MetricsLog.FileName));
        var finalVal = records.LastOrDefault(r => r.ValLoss is not null);
        return new TrainingSummary(
            runDirectory,
            records.Count > 0 ? records[^1].Step : 0,
            parameters,
            records.Count > 0 ? records.TakeLast(10).Average(r => r.TrainLoss) : double.NaN,
            finalVal?.ValLoss ?? double.NaN,
            finalVal?.ValAccuracy,
            optimal,
            tokensPerS ?? (records.Count > 0 ? records.Average(r => r.TokensPerS) : double.NaN),
            records.Count > 0 ? records[^1].ElapsedS : 0);
    }

    static (double Loss, double GradNorm) ForwardBackward(ITrainingTask task, OptimizerHelper optimizer, TrainingOptions options, long step)
    {
        optimizer.zero_grad();
        var loss = 0.0;
        for (var micro = 0; micro < options.GradAccumulation; micro++)
        {
            using var microScope = NewDisposeScope();
            var microLoss = task.TrainingLoss(step, micro) / options.GradAccumulation;
            microLoss.backward();
            loss += microLoss.ToDouble();
        }
        // The norm is computed (and logged) even without clipping: an infinite bound leaves gradients as they are.
        var bound = options.GradClip > 0 ? options.GradClip : double.PositiveInfinity;
        var gradNorm = nn.utils.clip_grad_norm_(task.Model.parameters(), bound);
        return (loss, gradNorm);
    }

    static AdamW CreateOptimizer(nn.Module model, TrainingOptions options)
    {
        var (decayed, plain) = WeightDecayPolicy.Split(model);
        var groups = new List<AdamW.ParamGroup>
        {
            new(decayed, options.LearningRate, options.Beta1, options.Beta2, 1e-8, options.WeightDecay, false, false),
            new(plain, options.LearningRate, options.Beta1, options.Beta2, 1e-8, 0, false, false),
        };
        return optim.AdamW(groups, options.LearningRate, options.Beta1, options.Beta2);
    }

    /// <summary>Checks the directory against the request and returns the checkpoint to resume from, if any.</summary>
    Checkpoint? PrepareDirectory(bool resume, MetricsLog metrics)
    {
        var configPath = Path.Combine(runDirectory, ConfigFile);
        var checkpoints = Path.Combine(runDirectory, Checkpoint.FolderName);
        if (File.Exists(checkpoints))
            throw new CheckpointException($"run directory '{runDirectory}' is damaged: '{checkpoints}' is a file; expected the folder of checkpoints.");
        var existing = Checkpoint.Latest(runDirectory, w => Warning?.Invoke(w));
        var hasRun = File.Exists(configPath) || existing is not null;
        if (resume && !hasRun)
            throw new ArgumentException($"run directory '{runDirectory}' holds no run ({ConfigFile} and {Checkpoint.FolderName}/ are missing): nothing to resume.");
        if (hasRun && !resume)
            throw new RunExistsException($"run directory '{runDirectory}' already holds a run{(existing is null ? "" : $" (checkpoint at step {existing.State.Step})")}: resume it, or choose another directory.");
        if (RunConfig.Stored(runDirectory) is { } stored)
        {
            var difference = ConfigDifference.Find(stored, config);
            if (difference is not null)
                throw new CheckpointException($"run directory '{runDirectory}' was trained with a different configuration ({difference}); resume it with the same configuration or choose another directory.");
        }
        if (existing is not null && ConfigDifference.Find(existing.State.Config, config) is { } checkpointDifference)
            throw new CheckpointException($"checkpoint '{existing.Directory}' is from a different configuration ({checkpointDifference}).");
        if (existing?.State.DataFingerprint is { } trained && DataFingerprint is { } now && trained != now)
            throw new InvalidDataException($"data '{config.Data.Path}' has changed since run directory '{runDirectory}' was trained on it " +
                $"(fingerprint {now}; checkpoint step {existing.State.Step} has {trained}): restore that data to resume, or start a new run in another directory.");
        if (existing is null)
        {
            if (resume && hasRun) Warning?.Invoke($"no intact checkpoint in '{runDirectory}'; starting from step 0.");
        }
        return existing;
    }
}
