using Mhc.Cli;
using Mhc.Connections;
using Mhc.Data;
using Mhc.Models;
using Mhc.Training;
using TorchSharp;

namespace Mhc.Tests;

/// <summary>
/// <c>eval</c> and <c>sample</c> read a run while it trains (issue 25, item 14): retention renames an old checkpoint out of
/// sight before deleting it, and a reader whose checkpoint was retired between listing and loading loads the newer one.
/// </summary>
public class ConcurrentReaderTests
{
    static readonly string[] Files = ["model.bin", "optimizer.bin", "state.json", "checksums.json"];

    /// <summary>A run with checkpoints at steps 5 and 10; returns its resolved config.</summary>
    static RunConfig TrainedRun(string run)
    {
        var config = new RunConfig
        {
            Model = new GptConfig { DModel = 32, Layers = 1, Heads = 2, SeqLen = 16, Connection = new ConnectionOptions { Kind = ConnectionKind.Manifold } },
            Training = new TrainingOptions { Steps = 10, BatchSize = 4, EvalEvery = 10, EvalBatches = 1, CheckpointEvery = 5, Threads = 2, DiagnosticsEvery = 0 },
        };
        var corpus = SyntheticLanguage.Create(16, trainDocuments: 200, validationDocuments: 16, seed: 5);
        new Trainer(config, run, () => new LanguageModelTask(config, corpus)).Run(resume: false);
        return Checkpoint.Latest(run)!.State.Config;
    }

    /// <summary>Saves checkpoints of <paramref name="model"/> at <paramref name="steps"/>, as the training running in the run would.</summary>
    static void Save(string run, RunConfig config, Gpt model, params long[] steps)
    {
        using var optimizer = torch.optim.AdamW(model.parameters());
        foreach (var step in steps)
            Checkpoint.Save(run, model, optimizer, new CheckpointState { Step = step, RngState = Checkpoint.CaptureRng(), Config = config });
    }

    [Fact]
    public void A_checkpoint_retired_between_listing_and_loading_gives_way_to_the_newer_one()
    {
        using var temp = TestPaths.Temp();
        var run = temp.File("run");
        var config = TrainedRun(run);
        var source = ModelSource.FromCheckpoint(run);
        Assert.Equal(10, source.Checkpoint!.Value.Step);

        // Meanwhile the training writes steps 15 and 20 and, keeping two, retires 5 and then 10: the one the reader listed.
        torch.manual_seed(77);
        using var writer = new Gpt(config.Model);
        Save(run, config, writer, 15, 20);
        Assert.False(Directory.Exists(source.Checkpoint.Value.Directory));

        using var reader = new Gpt(config.Model);
        var err = new StringWriter();
        var original = Console.Error;
        Console.SetError(err);
        ModelSource used;
        try
        {
            used = source.LoadInto(reader);
        }
        finally
        {
            Console.SetError(original);
        }
        // What the commands print afterwards names the checkpoint loaded, not the one first listed.
        Assert.Equal(20, used.Checkpoint!.Value.Step);
        Assert.Contains("(step 20)", used.Description, StringComparison.Ordinal);
        Assert.Contains("was retired by the training running in this run", err.ToString(), StringComparison.Ordinal);
        Assert.Contains("(step 20)", err.ToString(), StringComparison.Ordinal);
        var expected = writer.parameters().ToList();
        var loaded = reader.parameters().ToList();
        Assert.Equal(expected.Count, loaded.Count);
        for (var i = 0; i < expected.Count; i++) Assert.True(expected[i].equal(loaded[i]).all().item<bool>(), $"parameter {i} differs from step 20's");
    }

    [Fact]
    public async Task A_reader_never_sees_a_partly_deleted_checkpoint_while_old_ones_are_retired()
    {
        using var temp = TestPaths.Temp();
        var run = temp.File("run");
        var config = TrainedRun(run);
        var root = Path.Combine(run, Checkpoint.FolderName);
        // A checkpoint whose retirement was cut short by a kill: out of sight, and cleared by the next save.
        var leftover = Path.Combine(root, $".retired-step-000005-999");
        Directory.CreateDirectory(leftover);
        File.Copy(Path.Combine(root, "step-000010", "model.bin"), Path.Combine(leftover, "model.bin"));
        var warnings = new List<string>();
        Assert.Equal(10, Checkpoint.Latest(run, warnings.Add)!.State.Step);
        Assert.Empty(warnings);

        var partial = new List<string>();
        using var done = new CancellationTokenSource();
        var watcher = Task.Run(() =>
        {
            while (!done.IsCancellationRequested)
                foreach (var folder in Directory.GetDirectories(root, "step-*").Where(d => !d.Contains(".tmp-", StringComparison.Ordinal)))
                {
                    string[] present;
                    try
                    {
                        present = Directory.GetFiles(folder).Select(Path.GetFileName).ToArray()!;
                    }
                    catch (DirectoryNotFoundException)
                    {
                        continue;   // retired as a whole
                    }
                    // A listing cut short by the rename is fine; a folder still in sight with files missing is not.
                    if (Files.Except(present).Any() && Directory.Exists(folder)) partial.Add($"{folder}: {string.Join(", ", present)}");
                }
        });
        using var model = new Gpt(config.Model);
        Save(run, config, model, Enumerable.Range(3, 30).Select(i => i * 5L).ToArray());
        done.Cancel();
        await watcher;

        Assert.Empty(partial);
        Assert.Equal(["step-000155", "step-000160"], Directory.GetFileSystemEntries(root).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(160, Checkpoint.Latest(run, warnings.Add)!.State.Step);
        Assert.Empty(warnings);
    }
}
