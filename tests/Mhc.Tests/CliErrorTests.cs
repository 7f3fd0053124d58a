using System.Text;
using Mhc.Cli;
using static Mhc.Tests.InProcessCli;

namespace Mhc.Tests;

/// <summary>
/// Hostile input through the real command line: one clear line on stderr, the documented exit code
/// (README, "Errors and exit codes"), no stack trace, nothing already saved lost.
/// </summary>
public class CliErrorTests
{
    static readonly string[] Tiny = ["--layers", "1", "--d-model", "32", "--heads", "2", "--seq-len", "16", "--batch-size", "4"];

    static void AssertError((int Code, string Err) result, int code, string expected)
    {
        Assert.True(result.Code == code, $"exit code {result.Code}, expected {code}: {result.Err}");
        var lines = result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("warning:", StringComparison.Ordinal)).ToList();
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(expected, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_data_files_exit_3_naming_the_file()
    {
        using var temp = TestPaths.Temp();
        string Write(string name, byte[] bytes)
        {
            var path = temp.File(name);
            File.WriteAllBytes(path, bytes);
            return path;
        }
        var cases = new (string Path, string Expected)[]
        {
            (temp.File("missing.txt"), "does not exist"),
            (Write("empty.txt", []), "is empty"),
            (Write("binary.txt", [1, 2, 0, 3, 4]), "looks binary"),
            (Write("latin1.txt", [0x63, 0x61, 0x66, 0xE9]), "is not valid UTF-8"),
            (Write("short.txt", Encoding.UTF8.GetBytes("too short")), "too short for seq_len = 16"),
        };
        foreach (var (path, expected) in cases)
        {
            var result = Run(["train", "--data", path, "--tokenizer", "byte", "--steps", "1", "--out", temp.File("run-" + Path.GetFileName(path)), .. Tiny]);
            AssertError(result, ExitCodes.DataError, expected);
            Assert.Contains(path, result.Err, StringComparison.Ordinal);
        }
        // Unreadable: permissions stop other users; root reads anything, so it gets a file whose read fails.
        var unreadable = Environment.UserName == "root" ? "/proc/self/clear_refs" : Write("locked.txt", Encoding.UTF8.GetBytes(new string('x', 500)));
        if (unreadable != "/proc/self/clear_refs" && !OperatingSystem.IsWindows()) File.SetUnixFileMode(unreadable, UnixFileMode.None);
        AssertError(Run(["train", "--data", unreadable, "--steps", "1", "--out", temp.File("run-locked"), .. Tiny]), ExitCodes.DataError, "cannot be read");
    }

    [Fact]
    public void Bad_configs_and_options_exit_2_naming_the_value()
    {
        using var temp = TestPaths.Temp();
        var invalid = temp.File("invalid.json");
        File.WriteAllText(invalid, "{ \"model\": ");
        var unknown = temp.File("unknown.json");
        File.WriteAllText(unknown, """{ "training": { "stepz": 3 } }""");
        var cases = new (string[] Args, string Expected)[]
        {
            (["train", "--config", invalid], "is invalid"),
            (["train", "--config", unknown], "stepz"),
            (["train", "--streams", "0", "--steps", "1"], "connection.streams = 0"),
            (["train", "--d-model", "30", "--heads", "4"], "model.d_model = 30 is out of range: allowed a multiple of heads = 4"),
            (["train", "--steps", "-5"], "training.steps = -5"),
            (["train", "--connection", "mhcc"], "connection = 'mhcc' is unknown"),
            (["train", "--tokenizer", "gpt3"], "tokenizer = 'gpt3' is unknown"),
            (["train", "--bogus"], "--bogus"),
            (["compare", "--kinds", "residual,xx"], "connection = 'xx' is unknown"),
            (["bench", "--preset", "r9"], "--preset = 'r9' is unknown"),
            (["compare", "--preset", "steep"], "--preset = 'steep' is unknown: allowed deep, spike"),
        };
        foreach (var (args, expected) in cases)
            AssertError(Run(args[0] == "bench" ? args : [.. args, "--out", temp.File("run")]), ExitCodes.InvalidArguments, expected);
    }

    [Fact]
    public void Checkpoint_problems_exit_4_and_nothing_saved_is_lost()
    {
        using var temp = TestPaths.Temp();
        var run = temp.File("run");
        Assert.Equal(0, Run(["train", "--steps", "2", "--connection", "mhc", "--out", run, .. Tiny]).Code);
        var checkpoints = Directory.GetDirectories(Path.Combine(run, "checkpoints"));

        AssertError(Run(["train", "--steps", "2", "--connection", "hc", "--out", run, "--resume", .. Tiny]), ExitCodes.CheckpointError,
            "was trained with a different configuration (model.connection.kind: \"mhc\" stored vs \"hc\" requested)");
        AssertError(Run(["sample", "--checkpoint", temp.File("nowhere")]), ExitCodes.CheckpointError, "does not exist");

        // Damage the only checkpoint: detected by its checksum, named, and the run directory is left as it was.
        var model = Path.Combine(checkpoints.Single(), "model.bin");
        var bytes = File.ReadAllBytes(model);
        bytes[100] ^= 0x5A;
        File.WriteAllBytes(model, bytes);
        var result = Run(["sample", "--checkpoint", run]);
        AssertError(result, ExitCodes.CheckpointError, "holds no checkpoint");
        Assert.Contains($"checkpoint file '{model}' is corrupt", result.Err, StringComparison.Ordinal);
        Assert.Equal(checkpoints, Directory.GetDirectories(Path.Combine(run, "checkpoints")));

        // Starting over in a directory that holds a run is refused instead of overwriting it.
        AssertError(Run(["train", "--steps", "2", "--out", run, .. Tiny]), ExitCodes.InvalidArguments, "already holds a run");
    }

    [Fact]
    public void A_diverging_run_exits_5_naming_the_step()
    {
        using var temp = TestPaths.Temp();
        var config = temp.File("hot.json");
        // No clipping and an absurd learning rate: the weights blow up within a few steps.
        File.WriteAllText(config, """{ "training": { "learning_rate": 1e12, "grad_clip": 0, "warmup_steps": 0, "steps": 30 }, "model": { "d_model": 32, "heads": 2, "layers": 1, "seq_len": 16 } }""");
        var result = Run(["train", "--config", config, "--out", temp.File("run")]);
        AssertError(result, ExitCodes.NumericalFault, "step ");
        Assert.Matches("step \\d+: the (loss|gradient norm) is (NaN|∞|-∞|Infinity)", result.Err);
    }

    [Fact]
    public void A_run_directory_in_use_exits_7()
    {
        using var temp = TestPaths.Temp();
        var run = temp.File("run");
        using var held = Mhc.Training.RunLock.Acquire(run);
        AssertError(Run(["train", "--steps", "1", "--out", run, .. Tiny]), ExitCodes.RunDirectoryInUse, "is in use");
    }

    [FactWhen(Requirement.MountNamespace)]
    [Trait("Category", "Slow")]
    public void A_full_disk_while_checkpointing_exits_6_and_keeps_the_earlier_checkpoints()
    {
        using var temp = TestPaths.Temp();
        var config = temp.File("config.json");
        File.WriteAllText(config, """{ "model": { "d_model": 32, "heads": 2, "layers": 1, "seq_len": 16 }, "training": { "steps": 40, "checkpoint_every": 2, "batch_size": 4, "eval_batches": 1 }, "data": { "corpus_documents": 200 } }""");
        var disk = temp.File("disk");
        Directory.CreateDirectory(disk);
        // An 800 kB filesystem in a private mount namespace: room for two checkpoints of this model (330 kB each), not three.
        var script = $"""
            mount -t tmpfs -o size=800k tmpfs '{disk}' || exit 99
            '{CliProcess.Executable}' train --config '{config}' --out '{disk}/run'
            echo "exit=$?"
            ls '{disk}/run/checkpoints'
            '{CliProcess.Executable}' eval --checkpoint '{disk}/run' > /dev/null && echo "eval ok"
            """;
        var (code, stdout, stderr) = CliProcess.RunFile("unshare", ["-r", "-m", "sh", "-c", script]);
        Assert.True(code != 99, $"could not mount a small filesystem for the test: {stderr}");
        Assert.Contains($"exit={ExitCodes.WriteFailed}", stdout, StringComparison.Ordinal);
        Assert.Contains("No space left on device", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        Assert.Contains("step-0000", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(".tmp-", stdout, StringComparison.Ordinal);
        Assert.Contains("eval ok", stdout, StringComparison.Ordinal);
    }

    [FactWhen(Requirement.Linux, Requirement.Unprivileged)]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Resume_in_a_directory_without_write_permission_exits_6_saying_so()
    {
        using var temp = TestPaths.Temp();
        var run = temp.File("run");
        Assert.Equal(0, Run(["train", "--steps", "2", "--out", run, .. Tiny]).Code);
        var mode = File.GetUnixFileMode(run);
        File.SetUnixFileMode(run, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        try
        {
            AssertError(Run(["train", "--out", run, "--resume"]), ExitCodes.WriteFailed, "is on a read-only file system (or not writable)");
        }
        finally
        {
            File.SetUnixFileMode(run, mode);
        }
    }

    [FactWhen(Requirement.MountNamespace)]
    public void Resume_on_a_read_only_file_system_exits_6_saying_so()
    {
        using var temp = TestPaths.Temp();
        var disk = temp.File("disk");
        var run = Path.Combine(disk, "run");
        Assert.Equal(0, Run(["train", "--steps", "2", "--out", run, .. Tiny]).Code);
        // The folder mounted read-only onto itself, in a private mount namespace: read-only even for root.
        var script = $"""
            mount --bind '{disk}' '{disk}' && mount -o remount,ro,bind '{disk}' '{disk}' || exit 99
            '{CliProcess.Executable}' train --out '{run}' --resume
            echo "exit=$?"
            """;
        var (code, stdout, stderr) = CliProcess.RunFile("unshare", ["-r", "-m", "sh", "-c", script]);
        Assert.True(code != 99, $"could not mount the folder read-only for the test: {stderr}");
        Assert.Contains($"exit={ExitCodes.WriteFailed}", stdout, StringComparison.Ordinal);
        var error = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: run directory '{run}' is on a read-only file system (or not writable): its lock file '{Path.Combine(run, ".lock")}' cannot be created", error, StringComparison.Ordinal);
        Assert.Contains("Read-only file system", error, StringComparison.Ordinal);   // the system's reason
    }
}

