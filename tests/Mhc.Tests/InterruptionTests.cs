using System.Diagnostics;
using Mhc.Cli;
using Mhc.Training;

namespace Mhc.Tests;

/// <summary>SIGTERM (kill, timeout, docker stop, systemd, Slurm) stops a training like Ctrl+C: the steps done are checkpointed and the lock released.</summary>
public class InterruptionTests
{
    [FactWhen(Requirement.Linux)]
    [Trait("Category", "Slow")]
    public void Sigterm_checkpoints_the_last_step_says_so_and_releases_the_lock()
    {
        using var temp = TestPaths.Temp();
        var config = temp.File("config.json");
        File.WriteAllText(config, """{ "model": { "d_model": 32, "heads": 2, "layers": 1, "seq_len": 16 }, "training": { "steps": 100000, "checkpoint_every": 1000, "batch_size": 4, "eval_batches": 1 }, "data": { "corpus_documents": 200 } }""");
        var run = temp.File("run");
        var metrics = Path.Combine(run, MetricsLog.FileName);
        using var process = Process.Start(CliProcess.StartInfo(CliProcess.Executable, ["train", "--config", config, "--out", run]))!;
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2) && (!File.Exists(metrics) || File.ReadLines(metrics).Count() < 3)) Thread.Sleep(20);
        Assert.False(process.HasExited, stderr.IsCompleted ? stderr.Result : "exited early");
        Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "the run did not stop after SIGTERM");

        Assert.Equal(ExitCodes.Terminated, process.ExitCode);
        Assert.Contains("SIGTERM: stopping after this step", stderr.Result, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(run, RunLock.FileName)), "the lock was left behind");
        var lastLogged = MetricsLog.Read(metrics)[^1].Step;
        Assert.Equal(lastLogged, Checkpoint.Latest(run)!.State.Step);
    }
}
