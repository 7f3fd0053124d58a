using Mhc.Connections;
using Mhc.Data;
using Mhc.Models;
using Mhc.Training;

namespace Mhc.Tests;

public class TrainingTests
{
    /// <summary>Four fixed random documents, each starting with its own id so that every target is determined.</summary>
    static TokenCorpus TinyCorpus(int seqLen)
    {
        var rng = new SplitMix64(77);
        var docs = Enumerable.Range(0, 4 * (seqLen + 1)).Select(i => i % (seqLen + 1) == 0 ? i / (seqLen + 1) : (int)rng.NextInt64(16)).ToArray();
        return new TokenCorpus { Description = "tiny", TokenizerName = "byte", VocabSize = 16, Train = docs, Validation = docs, DocumentLength = seqLen + 1 };
    }

    static RunConfig TinyConfig(ConnectionKind kind, int steps) => new()
    {
        Model = new GptConfig { VocabSize = 16, DModel = 32, Layers = 2, Heads = 2, SeqLen = 16, Connection = RunConfigDefaults.For(kind) },
        Training = new TrainingOptions
        {
            Steps = steps, BatchSize = 4, LearningRate = 1e-2, WarmupSteps = 10, WeightDecay = 0, EvalEvery = 50, EvalBatches = 1,
            CheckpointEvery = 1000, Threads = 2, Seed = 1,
        },
    };

    [Theory]
    [InlineData(ConnectionKind.Residual)]
    [InlineData(ConnectionKind.HyperStatic)]
    [InlineData(ConnectionKind.HyperDynamic)]
    [InlineData(ConnectionKind.Manifold)]
    [Trait("Category", "Slow")]
    public void Every_kind_memorises_a_tiny_batch(ConnectionKind kind)
    {
        using var run = TestPaths.Temp();
        var config = TinyConfig(kind, 150);
        var corpus = TinyCorpus(16);
        var summary = new Trainer(config, run.Path, () => new LanguageModelTask(config, corpus)).Run(resume: false);
        // Random tokens over 16 ids start near ln 16 = 2.77; memorised, the loss is close to 0.
        Assert.True(summary.FinalValLoss < 0.05, $"{kind}: validation loss {summary.FinalValLoss}");
        var records = MetricsLog.Read(Path.Combine(run.Path, MetricsLog.FileName));
        Assert.Equal(150, records.Count);
        Assert.True(records[0].TrainLoss > 2.5);
        Assert.All(records, r => Assert.True(r.GradNorm > 0 && r.Lr > 0 && r.TokensPerS > 0 && r.ElapsedS > 0));
        Assert.Equal(3, records.Count(r => r.ValLoss is not null));   // steps 50, 100, 150
    }

    [Theory]
    [InlineData(ConnectionKind.Manifold, ExitHead.Sum)]
    [InlineData(ConnectionKind.ManifoldLite, ExitHead.Learned)]
    [InlineData(ConnectionKind.ResidualMatrix, ExitHead.Sum)]
    [InlineData(ConnectionKind.MultiwayDense, ExitHead.Sum)]
    public void Resume_gives_exactly_the_losses_of_an_uninterrupted_run(ConnectionKind kind, ExitHead exitHead)
    {
        // Dropout on: the resumed run must also restore the random state.
        var config = TinyConfig(kind, 12);
        config = config with
        {
            Model = config.Model with { Dropout = 0.1, Connection = config.Model.Connection with { ExitHead = exitHead } },
            Training = config.Training with { CheckpointEvery = 4, EvalEvery = 3, GradAccumulation = 2 },
        };
        var corpus = TinyCorpus(16);
        ITrainingTask Task() => new LanguageModelTask(config, corpus);

        using var whole = TestPaths.Temp();
        new Trainer(config, whole.Path, Task).Run(resume: false);

        using var split = TestPaths.Temp();
        using (var stop = new CancellationTokenSource())
        {
            var first = new Trainer(config, split.Path, Task);
            first.Progress += p => { if (p.Step == 6) stop.Cancel(); };
            Assert.Equal(6, first.Run(resume: false, stop.Token).Steps);
        }
        Assert.True(Directory.Exists(Path.Combine(split.Path, "checkpoints", "step-000006")), "stopping checkpoints the last step");
        new Trainer(config, split.Path, Task).Run(resume: true);

        var a = MetricsLog.Read(Path.Combine(whole.Path, MetricsLog.FileName));
        var b = MetricsLog.Read(Path.Combine(split.Path, MetricsLog.FileName));
        Assert.Equal(12, a.Count);
        Assert.Equal(a.Select(r => (r.Step, r.TrainLoss, r.ValLoss, r.GradNorm, r.Lr)), b.Select(r => (r.Step, r.TrainLoss, r.ValLoss, r.GradNorm, r.Lr)));
    }

    [Fact]
    public void A_directory_with_a_run_is_not_overwritten_and_resume_checks_the_config()
    {
        using var run = TestPaths.Temp();
        var config = TinyConfig(ConnectionKind.Manifold, 3);
        var corpus = TinyCorpus(16);
        new Trainer(config, run.Path, () => new LanguageModelTask(config, corpus)).Run(resume: false);
        var again = Assert.Throws<RunExistsException>(() => new Trainer(config, run.Path, () => new LanguageModelTask(config, corpus)).Run(resume: false));
        Assert.Contains("already holds a run (checkpoint at step 3): resume it", again.Message, StringComparison.Ordinal);
        var other = config with { Model = config.Model with { Connection = new ConnectionOptions { Kind = ConnectionKind.HyperDynamic } } };
        var mismatch = Assert.Throws<CheckpointException>(() => new Trainer(other, run.Path, () => new LanguageModelTask(other, corpus)).Run(resume: true));
        Assert.Contains("model.connection.kind: \"mhc\" stored vs \"hc\" requested", mismatch.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_corrupt_checkpoint_is_named_and_the_previous_one_is_used()
    {
        using var run = TestPaths.Temp();
        var config = TinyConfig(ConnectionKind.Residual, 6) with { Training = TinyConfig(ConnectionKind.Residual, 6).Training with { CheckpointEvery = 3 } };
        var corpus = TinyCorpus(16);
        new Trainer(config, run.Path, () => new LanguageModelTask(config, corpus)).Run(resume: false);
        var newest = Path.Combine(run.Path, "checkpoints", "step-000006", "model.bin");
        var bytes = File.ReadAllBytes(newest);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(newest, bytes);
        var warnings = new List<string>();
        var checkpoint = Checkpoint.Latest(run.Path, warnings.Add);
        Assert.Equal(3, checkpoint!.State.Step);
        Assert.Contains($"checkpoint file '{newest}' is corrupt", Assert.Single(warnings), StringComparison.Ordinal);
        Assert.Contains("step-000006", Assert.Throws<CheckpointException>(() => Checkpoint.Open(Path.GetDirectoryName(newest)!)).Message, StringComparison.Ordinal);
    }
}
