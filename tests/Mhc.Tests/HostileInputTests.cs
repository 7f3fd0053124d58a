using Mhc.Cli;
using Mhc.Connections;
using Mhc.Models;
using Mhc.Training;
using static Mhc.Tests.InProcessCli;

namespace Mhc.Tests;

/// <summary>
/// Issue 25's classes of bad input through the real command line, each refused before anything is written: one
/// "error:" line naming the option or file, the documented exit code, no .NET type names, no stack trace.
/// </summary>
public class HostileInputTests
{
    static readonly string[] Tiny = ["--layers", "1", "--d-model", "32", "--heads", "2", "--seq-len", "16", "--batch-size", "4", "--steps", "2"];

    static void AssertRefused((int Code, string Err) result, int code, string expected)
    {
        Assert.True(result.Code == code, $"exit code {result.Code}, expected {code}: {result.Err}");
        var lines = result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(expected, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", result.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("Mhc.", result.Err, StringComparison.Ordinal);
    }

    /// <summary>Replaces one option of <see cref="Tiny"/> (options may not repeat).</summary>
    static string[] With(string option, string value)
    {
        var args = Tiny.ToList();
        var at = args.IndexOf(option);
        if (at >= 0) args[at + 1] = value;
        else args.AddRange([option, value]);
        return [.. args];
    }

    [Theory]
    [InlineData("--d-model", "1073741824", "model.d_model = 1073741824 is out of range: allowed 2..65536")]
    [InlineData("--layers", "2147483647", "model.layers = 2147483647 is out of range")]
    [InlineData("--batch-size", "2147483647", "training.batch_size = 2147483647 is out of range")]
    [InlineData("--seq-len", "100000", "model.seq_len = 100000 is out of range for this machine: training would need at least")]
    [InlineData("--seq-len", "1", "model.seq_len = 1 is out of range for the built-in corpus: allowed >= 4")]
    [InlineData("--lr", "1e308", "training.learning_rate = 1E+308 is out of range: allowed > 0 and representable in float32")]
    [InlineData("--lr", "1e-50", "training.learning_rate = 1E-50 is out of range")]
    [InlineData("--lr", "0,001", "--lr = '0,001' is not a number")]
    [InlineData("--lr", "1,5e-3", "--lr = '1,5e-3' is not a number")]
    [InlineData("--steps", "abc", "--steps = 'abc' is not a whole number")]
    [InlineData("--streams", "0", "connection.streams = 0 is out of range for kind = mhc: allowed 2..64")]
    public void Train_refuses_sizes_and_numbers_up_front_writing_nothing(string option, string value, string expected)
    {
        using var temp = TestPaths.Temp();
        var run = temp.File("run");
        var result = Run(["train", .. With(option, value), "--out", run]);
        AssertRefused(result, ExitCodes.InvalidArguments, expected);
        if (!expected.StartsWith("--", StringComparison.Ordinal)) Assert.Contains($"(option {option})", result.Err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(run), "nothing is written before validation passes");
    }

    [Fact]
    public void Every_command_range_checks_its_sizes()
    {
        AssertRefused(Run(["compare", .. With("--d-model", "1073741824"), "--out", Path.Combine(Path.GetTempPath(), "never")]), ExitCodes.InvalidArguments, "model.d_model = 1073741824");
        AssertRefused(Run(["bench", "--d-model", "1073741824"]), ExitCodes.InvalidArguments, "--d-model = 1073741824 is out of range");
        AssertRefused(Run(["bench", "--seq", "100000", "--batch", "64"]), ExitCodes.InvalidArguments, "--seq = 100000 is out of range for this machine");
        AssertRefused(Run(["demo", "--d-model", "1073741824"]), ExitCodes.InvalidArguments, "--d-model = 1073741824 is out of range");
        AssertRefused(Run(["demo", "--streams", "0"]), ExitCodes.InvalidArguments, "--streams = 0 is out of range");
        AssertRefused(Run(["demo", "--blocks", "2147483647"]), ExitCodes.InvalidArguments, "--blocks = 2147483647 is out of range");
        AssertRefused(Run(["sample", "--checkpoint", "x", "--tokens", "2147483647"]), ExitCodes.InvalidArguments, "--tokens = 2147483647 is out of range");
        AssertRefused(Run(["sample", "--checkpoint", "x", "--temperature", "1e39"]), ExitCodes.InvalidArguments, "--temperature = 1E+39 is out of range");
    }

    [Fact]
    public void A_config_file_that_is_too_big_names_the_key()
    {
        using var temp = TestPaths.Temp();
        var config = temp.File("big.json");
        File.WriteAllText(config, """{ "model": { "mlp_hidden": 1000000000 } }""");
        AssertRefused(Run(["train", "--config", config, "--out", temp.File("run")]), ExitCodes.InvalidArguments, "model.mlp_hidden = 1000000000 is out of range");
        File.WriteAllText(config, """{ "training": 5 }""");
        AssertRefused(Run(["train", "--config", config, "--out", temp.File("run")]), ExitCodes.InvalidArguments, "expected a section { … } with keys steps, batch_size");
        File.WriteAllText(config, """{ "training": { "steps": "many" } }""");
        AssertRefused(Run(["train", "--config", config, "--out", temp.File("run")]), ExitCodes.InvalidArguments, "expected a whole number at 'training.steps'");
        AssertRefused(Run(["train", "--config", temp.Path, "--out", temp.File("run")]), ExitCodes.InvalidArguments, "is a directory; expected a JSON file");
        Assert.False(Directory.Exists(temp.File("run")));
    }

    [Fact]
    public void The_memory_estimate_names_the_setting_that_matters_and_the_machine()
    {
        var config = new RunConfig { Model = new GptConfig { DModel = 64, Heads = 2, SeqLen = 65536 }, Training = new TrainingOptions { BatchSize = 8 } };
        var error = Assert.Throws<ArgumentException>(() => TrainingMemory.EnsureFits(config, available: 16L << 30));
        Assert.StartsWith("model.seq_len = 65536 is out of range for this machine: training would need at least", error.Message, StringComparison.Ordinal);
        Assert.Contains("17.2 GB is available", error.Message, StringComparison.Ordinal);
        // The defaults fit a small machine; a wide model's optimizer state is named as what fills it.
        TrainingMemory.EnsureFits(new RunConfig(), available: 1L << 30);
        var wide = new RunConfig { Model = new GptConfig { DModel = 16384, Heads = 128, Layers = 8 } };
        Assert.Contains("weights, gradients and optimizer state", Assert.Throws<ArgumentException>(() => TrainingMemory.EnsureFits(wide, available: 16L << 30)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Output_and_resume_directories_are_checked()
    {
        using var temp = TestPaths.Temp();
        var file = temp.File("a-file");
        File.WriteAllText(file, "");
        AssertRefused(Run(["train", .. Tiny, "--out", file]), ExitCodes.InvalidArguments, $"--out '{file}' is a file; expected a directory");
        AssertRefused(Run(["train", .. Tiny, "--out", "/dev/null"]), ExitCodes.InvalidArguments, "--out '/dev/null' is a file; expected a directory");
        AssertRefused(Run(["compare", .. Tiny, "--out", file]), ExitCodes.InvalidArguments, "is a file; expected a directory");
        var missing = temp.File("missing");
        AssertRefused(Run(["train", .. Tiny, "--out", missing, "--resume"]), ExitCodes.InvalidArguments, "nothing to resume");
        Assert.False(Directory.Exists(missing));
        var empty = temp.File("empty");
        Directory.CreateDirectory(empty);
        AssertRefused(Run(["train", .. Tiny, "--out", empty, "--resume"]), ExitCodes.InvalidArguments, "holds no run");
    }

    [Fact]
    public void Commands_and_paths_of_the_wrong_kind_say_what_they_are()
    {
        var result = Run(["trian"]);
        AssertRefused(result, ExitCodes.InvalidArguments, "unknown command 'trian'");
        Assert.Single(result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        using var temp = TestPaths.Temp();
        var file = temp.File("weights.bin");
        File.WriteAllText(file, "x");
        AssertRefused(Run(["sample", "--checkpoint", file]), ExitCodes.CheckpointError, "is a file; expected a run directory");
    }

    [Fact]
    public void A_run_directory_whose_checkpoints_folder_is_a_file_is_refused_without_touching_its_metrics()
    {
        using var temp = TestPaths.Temp();
        var run = temp.File("run");
        Assert.Equal(0, Run(["train", .. Tiny, "--out", run]).Code);
        var metrics = File.ReadAllText(Path.Combine(run, MetricsLog.FileName));
        Directory.Delete(Path.Combine(run, Checkpoint.FolderName), recursive: true);
        File.WriteAllText(Path.Combine(run, Checkpoint.FolderName), "");
        AssertRefused(Run(["train", .. Tiny, "--out", run, "--resume"]), ExitCodes.CheckpointError, "is a file; expected the folder of checkpoints");
        Assert.Equal(metrics, File.ReadAllText(Path.Combine(run, MetricsLog.FileName)));

        File.Delete(Path.Combine(run, Checkpoint.FolderName));
        File.WriteAllText(Path.Combine(run, Trainer.ConfigFile), "{ \"model\": ");
        AssertRefused(Run(["train", .. Tiny, "--out", run, "--resume"]), ExitCodes.CheckpointError, $"run file '{Path.Combine(run, Trainer.ConfigFile)}' is damaged");
    }
}
