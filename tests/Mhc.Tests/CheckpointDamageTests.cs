using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mhc.Connections;
using Mhc.Data;
using Mhc.Models;
using Mhc.Training;

namespace Mhc.Tests;

/// <summary>
/// Damaged checkpoints and run files: retention never counts a damaged checkpoint as kept, and a checkpoint whose
/// checksums match but whose contents are wrong is refused naming the file (issue 25, items 1, 17, 18).
/// </summary>
public class CheckpointDamageTests
{
    static TokenCorpus Corpus => SyntheticLanguage.Create(16, trainDocuments: 200, validationDocuments: 16, seed: 5);

    static RunConfig Config(int steps) => new()
    {
        Model = new GptConfig { DModel = 32, Layers = 1, Heads = 2, SeqLen = 16, Connection = new ConnectionOptions { Kind = ConnectionKind.Manifold } },
        Training = new TrainingOptions { Steps = steps, BatchSize = 4, EvalEvery = 10, EvalBatches = 1, CheckpointEvery = 5, Threads = 2, Seed = 9, WarmupSteps = 2, DiagnosticsEvery = 0 },
    };

    static TrainingSummary Train(string run, RunConfig config, bool resume, long stopAfter = long.MaxValue)
    {
        var corpus = Corpus;
        using var stop = new CancellationTokenSource();
        var trainer = new Trainer(config, run, () => new LanguageModelTask(config, corpus));
        trainer.Progress += p => { if (p.Step >= stopAfter) stop.Cancel(); };
        return trainer.Run(resume, stop.Token);
    }

    static string[] Steps(string run) =>
        Directory.GetDirectories(Path.Combine(run, Checkpoint.FolderName)).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    static void FlipByte(string file)
    {
        var bytes = File.ReadAllBytes(file);
        bytes[bytes.Length / 2] ^= 0x5A;
        File.WriteAllBytes(file, bytes);
    }

    /// <summary>Replaces one file of a checkpoint and rewrites checksums.json to match: damage the checksums cannot see.</summary>
    static void Rewrite(string checkpoint, string file, byte[] contents)
    {
        File.WriteAllBytes(Path.Combine(checkpoint, file), contents);
        var sums = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(Path.Combine(checkpoint, "checksums.json")))!;
        sums[file] = Convert.ToHexStringLower(SHA256.HashData(contents));
        File.WriteAllText(Path.Combine(checkpoint, "checksums.json"), JsonSerializer.Serialize(sums));
    }

    static void EditState(string checkpoint, Action<JsonObject> edit)
    {
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "state.json")))!.AsObject();
        edit(state);
        Rewrite(checkpoint, "state.json", System.Text.Encoding.UTF8.GetBytes(state.ToJsonString()));
    }

    [Fact]
    public void A_run_restarted_after_all_its_checkpoints_failed_keeps_its_new_ones()
    {
        using var temp = TestPaths.Temp();
        var config = Config(20);
        Train(temp.Path, config, resume: false);
        Assert.Equal(["step-000015", "step-000020"], Steps(temp.Path));
        foreach (var step in Steps(temp.Path)) FlipByte(Path.Combine(temp.Path, Checkpoint.FolderName, step, "model.bin"));

        // Restarts from 0 (nothing intact) and stops after step 7: its checkpoints at 5 and 7 must both survive the damaged, higher-named ones.
        Train(temp.Path, config, resume: true, stopAfter: 7);
        Assert.Equal(["step-000005", "step-000007", "step-000015", "step-000020"], Steps(temp.Path));
        Assert.Equal(7, Checkpoint.Latest(temp.Path)!.State.Step);

        // Intact ones beyond the newest two are retired as usual; the damaged ones are replaced when the run reaches their steps.
        Train(temp.Path, config, resume: true);
        Assert.Equal(["step-000015", "step-000020"], Steps(temp.Path));
        Assert.All(Steps(temp.Path), s => Checkpoint.Open(Path.Combine(temp.Path, Checkpoint.FolderName, s)));
    }

    [Fact]
    public void Checkpoints_are_ordered_by_step_number_beyond_six_digits()
    {
        using var temp = TestPaths.Temp();
        var config = Config(5);
        Train(temp.Path, config, resume: false);
        var root = Path.Combine(temp.Path, Checkpoint.FolderName);
        var five = Path.Combine(root, "step-000005");
        Directory.Move(five, Path.Combine(root, "step-1000000"));
        EditState(Path.Combine(root, "step-1000000"), s => s["step"] = 1_000_000);
        Train(Path.Combine(temp.Path, "other"), config, resume: false);
        Directory.Move(Path.Combine(temp.Path, "other", Checkpoint.FolderName, "step-000005"), Path.Combine(root, "step-999999"));
        EditState(Path.Combine(root, "step-999999"), s => s["step"] = 999_999);
        Assert.Equal(1_000_000, Checkpoint.Latest(temp.Path)!.State.Step);
    }

    [Theory]
    [InlineData("step", "-5", "step = -5 is negative")]
    [InlineData("rng_state", "\"not base64!\"", "rng_state is not base64")]
    [InlineData("elapsed_s", "\"soon\"", "expected a number")]
    public void Checkpoint_state_fields_are_validated(string key, string json, string expected)
    {
        using var temp = TestPaths.Temp();
        Train(temp.Path, Config(5), resume: false);
        var checkpoint = Path.Combine(temp.Path, Checkpoint.FolderName, "step-000005");
        EditState(checkpoint, s => s[key] = JsonNode.Parse(json));
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Open(checkpoint));
        Assert.Contains(Path.Combine(checkpoint, "state.json"), error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_optimizer_file_with_matching_checksums_is_named()
    {
        using var temp = TestPaths.Temp();
        var config = Config(5);
        Train(temp.Path, config, resume: false);
        var checkpoint = Path.Combine(temp.Path, Checkpoint.FolderName, "step-000005");
        var optimizer = Path.Combine(checkpoint, "optimizer.bin");
        Rewrite(checkpoint, "optimizer.bin", File.ReadAllBytes(optimizer)[..100]);
        var error = Assert.Throws<CheckpointException>(() => Train(temp.Path, config with { Training = config.Training with { Steps = 5 } }, resume: true));
        Assert.Contains($"checkpoint file '{optimizer}' cannot be loaded", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{ \"model\": ", "run file")]
    [InlineData("{ \"training\": { \"stepz\": 3 } }", "unknown key 'stepz'")]
    public void A_damaged_stored_config_is_a_run_file_error_naming_it(string contents, string expected)
    {
        using var temp = TestPaths.Temp();
        File.WriteAllText(Path.Combine(temp.Path, Trainer.ConfigFile), contents);
        var error = Assert.Throws<CheckpointException>(() => RunConfig.Stored(temp.Path));
        Assert.Contains(Path.Combine(temp.Path, Trainer.ConfigFile), error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Mhc.Training", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Settings_that_change_no_result_may_change_on_resume_and_others_may_not()
    {
        var stored = Config(10);
        var free = stored with { Training = stored.Training with { Threads = 1, DiagnosticsEvery = 3, SkipNonFinite = true } };
        Assert.Null(ConfigDifference.Find(stored, free));
        Assert.Equal("training.learning_rate: 0.002 stored vs 0.003 requested",
            ConfigDifference.Find(stored, stored with { Training = stored.Training with { LearningRate = 3e-3 } }));
    }
}
