using Mhc.IO;
using Mhc.Connections;
using Mhc.Data;
using Mhc.Diagnostics;
using Mhc.Models;
using Mhc.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Mhc.Tests;

public class ReliabilityTests(ITestOutputHelper output)
{
    static TokenCorpus Corpus => SyntheticLanguage.Create(16, trainDocuments: 200, validationDocuments: 16, seed: 5);

    static RunConfig Config(int steps) => new()
    {
        Model = new GptConfig { DModel = 32, Layers = 1, Heads = 2, SeqLen = 16, Connection = new ConnectionOptions { Kind = ConnectionKind.Manifold } },
        Training = new TrainingOptions { Steps = steps, BatchSize = 4, EvalEvery = 5, EvalBatches = 1, CheckpointEvery = 5, Threads = 2, Seed = 9, WarmupSteps = 2, DiagnosticsEvery = 0 },
    };

    /// <summary>Makes the loss of one step NaN (so are its gradients), like a numerical blow-up would.</summary>
    sealed class FaultyTask(ITrainingTask inner, long faultyIndex) : ITrainingTask
    {
        public nn.Module Model => inner.Model;
        public IReadOnlyList<Connection> Connections => inner.Connections;
        public long TokensPerMicroBatch => inner.TokensPerMicroBatch;
        public Tensor TrainingLoss(long index, int micro) => index == faultyIndex ? inner.TrainingLoss(index, micro) * double.NaN : inner.TrainingLoss(index, micro);
        public Evaluation Evaluate(int batches) => inner.Evaluate(batches);
        public double? OptimalValidationLoss(int batches) => inner.OptimalValidationLoss(batches);
        public IReadOnlyList<Tensor> ProbeStates() => inner.ProbeStates();
        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public void A_nan_loss_stops_the_run_at_that_step_keeping_the_last_good_checkpoint()
    {
        using var run = TestPaths.Temp();
        var config = Config(12);
        var corpus = Corpus;
        var error = Assert.Throws<NonFiniteException>(() =>
            new Trainer(config, run.Path, () => new FaultyTask(new LanguageModelTask(config, corpus), faultyIndex: 7)).Run(resume: false));
        Assert.Equal(8, error.Step);
        Assert.Equal("loss", error.Quantity);
        Assert.Contains("step 8: the loss is NaN", error.Message, StringComparison.Ordinal);
        Assert.Contains("step-000005", error.Message, StringComparison.Ordinal);
        Assert.Equal(5, Checkpoint.Latest(run.Path)!.State.Step);
        Assert.Equal(7, MetricsLog.Read(Path.Combine(run.Path, MetricsLog.FileName)).Count);
    }

    [Fact]
    public void Skip_nonfinite_skips_that_step_and_leaves_the_weights_untouched()
    {
        using var run = TestPaths.Temp();
        var config = Config(10) with { Training = Config(10).Training with { SkipNonFinite = true, CheckpointEvery = 1 } };
        var corpus = Corpus;
        var warnings = new List<string>();
        var trainer = new Trainer(config, run.Path, () => new FaultyTask(new LanguageModelTask(config, corpus), faultyIndex: 5));
        trainer.Warning += warnings.Add;
        var summary = trainer.Run(resume: false);
        Assert.Equal(10, summary.Steps);
        Assert.True(double.IsFinite(summary.FinalValLoss));
        var records = MetricsLog.Read(Path.Combine(run.Path, MetricsLog.FileName));
        Assert.True(records[5].Skipped);
        Assert.Equal(1, records.Count(r => r.Skipped == true));
        Assert.Contains(warnings, w => w.Contains("step 6: the loss is NaN; step skipped", StringComparison.Ordinal));
    }

    [Fact]
    public void The_same_seed_gives_bit_identical_losses()
    {
        List<MetricsRecord> Train()
        {
            using var run = TestPaths.Temp();
            var config = Config(8) with { Model = Config(8).Model with { Dropout = 0.1 } };
            var corpus = Corpus;
            new Trainer(config, run.Path, () => new LanguageModelTask(config, corpus)).Run(resume: false);
            return MetricsLog.Read(Path.Combine(run.Path, MetricsLog.FileName));
        }
        var a = Train();
        var b = Train();
        Assert.Equal(a.Select(r => (r.TrainLoss, r.GradNorm, r.ValLoss)), b.Select(r => (r.TrainLoss, r.GradNorm, r.ValLoss)));
    }

    [Fact]
    public void A_second_training_in_the_same_directory_is_refused()
    {
        using var run = TestPaths.Temp();
        using var held = RunLock.Acquire(run.Path);
        var config = Config(2);
        var corpus = Corpus;
        var error = Assert.Throws<RunDirectoryInUseException>(() => new Trainer(config, run.Path, () => new LanguageModelTask(config, corpus)).Run(resume: false));
        Assert.Contains($"run directory '{run.Path}' is in use", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(run.Path, Trainer.ConfigFile)), "the refused run wrote nothing");
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void Two_thousand_steps_keep_resident_memory_flat()
    {
        using var run = TestPaths.Temp();
        var config = Config(2000) with { Training = Config(2000).Training with { CheckpointEvery = 500, EvalEvery = 250, DiagnosticsEvery = 100, LogEvery = 10 } };
        var corpus = Corpus;
        var samples = new List<(long Step, long Bytes)>();
        var trainer = new Trainer(config, run.Path, () => new LanguageModelTask(config, corpus)) { Diagnose = TrainingDiagnostics.Hook(run.Path) };
        trainer.Progress += p => { if (p.Step % 100 == 0) samples.Add((p.Step, ProcessMemory.Resident())); };
        trainer.Run(resume: false);
        var afterWarmUp = samples.First(s => s.Step == 300).Bytes;
        var last = samples[^1].Bytes;
        output.WriteLine(string.Join(", ", samples.Select(s => $"{s.Step}: {s.Bytes / 1048576.0:F1} MB")));
        output.WriteLine($"growth from step 300 to 2000: {(last - afterWarmUp) * 100.0 / afterWarmUp:F2}%");
        Assert.True(last < afterWarmUp * 1.05, $"resident memory grew from {afterWarmUp / 1048576.0:F1} MB to {last / 1048576.0:F1} MB");
    }
}
