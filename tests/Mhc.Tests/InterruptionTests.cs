using System.Diagnostics;
using System.Text.Json;
using Mhc.Cli;
using Mhc.Cli.Reports;
using Mhc.Connections;
using Mhc.Training;

namespace Mhc.Tests;

/// <summary>SIGTERM (kill, timeout, docker stop, systemd, Slurm) stops a training like Ctrl+C: the steps done are checkpointed and the lock released.</summary>
public class InterruptionTests
{
    /// <summary>A tiny model on a small built-in corpus, with steps enough never to finish before the signal.</summary>
    const string Endless = """{ "model": { "d_model": 32, "heads": 2, "layers": 1, "seq_len": 16 }, "training": { "steps": 100000, "checkpoint_every": 1000, "eval_every": 1000, "batch_size": 4, "eval_batches": 1 }, "data": { "corpus_documents": 200 } }""";

    /// <summary>Runs <c>mhc <paramref name="args"/></c>, sends <paramref name="signal"/> once <paramref name="metrics"/> has 3 lines, and waits for the end.</summary>
    static (int Code, string Out, string Err) Interrupt(string[] args, string metrics, string signal)
    {
        using var process = Process.Start(CliProcess.StartInfo(CliProcess.Executable, args))!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2) && (!File.Exists(metrics) || File.ReadLines(metrics).Count() < 3)) Thread.Sleep(20);
        Assert.False(process.HasExited, stderr.IsCompleted ? stderr.Result : "exited early");
        Process.Start("kill", [$"-{signal}", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), $"mhc {args[0]} did not stop after SIG{signal}");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
    [FactWhen(Requirement.Linux)]
    [Trait("Category", "Slow")]
    public void Sigterm_checkpoints_the_last_step_says_so_and_releases_the_lock()
    {
        using var temp = TestPaths.Temp();
        var config = temp.File("config.json");
        File.WriteAllText(config, Endless);
        var run = temp.File("run");
        var metrics = Path.Combine(run, MetricsLog.FileName);
        var (code, _, stderr) = Interrupt(["train", "--config", config, "--out", run], metrics, "TERM");

        Assert.Equal(ExitCodes.Terminated, code);
        Assert.Contains("SIGTERM: stopping after this step", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(run, RunLock.FileName)), "the lock was left behind");
        var lastLogged = MetricsLog.Read(metrics)[^1].Step;
        Assert.Equal(lastLogged, Checkpoint.Latest(run)!.State.Step);
    }

    [Fact]
    public void An_interrupted_comparison_marks_the_run_under_way_and_starts_no_other()
    {
        using var temp = TestPaths.Temp();
        var config = RunConfig.FromJson("""{ "model": { "d_model": 32, "heads": 2, "layers": 1, "seq_len": 16 }, "training": { "steps": 20, "batch_size": 4, "eval_batches": 1, "eval_every": 5 }, "data": { "corpus_documents": 200 } }""");
        var prepared = TrainingTasks.Prepare(config, null);
        using var stop = new CancellationTokenSource();
        (string, long, Func<Action<Trainer>, ComparedRun?> Job) Job(ConnectionKind kind) => ComparisonJob.Create(prepared,
            prepared.Config.WithConnection(RunOptions.WithKind(prepared.Config.Connection, kind, null)), kind.ToName(), 0,
            temp.File(kind.ToName()), kind.ToName(), resumable: false, stop.Token);

        // Ctrl+C arrives while step 7 of the first run reports its progress: the run stops after that step.
        var interrupted = Job(ConnectionKind.Residual).Job(trainer => trainer.Progress += p => { if (p.Step == 7) stop.Cancel(); })!;
        var notStarted = Job(ConnectionKind.HyperDynamic).Job(_ => Assert.Fail("a run after the interrupt was started"));

        Assert.True(interrupted.Interrupted);
        Assert.Null(interrupted.Failure);
        Assert.Equal(7, interrupted.Summary.Steps);
        Assert.Null(notStarted);
        Assert.False(Directory.Exists(temp.File("hc")), "a folder was created for a run after the interrupt");

        var outDir = temp.File("report");
        var figures = Comparison.Figures([interrupted]);
        ComparisonReport.Write(outDir, prepared.Config, [interrupted], figures, "mhc compare", [new NotStartedRun("hc", 0)]);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")));
        Assert.True(json.RootElement.GetProperty("results")[0].GetProperty("interrupted").GetBoolean());
        Assert.Equal("hc", json.RootElement.GetProperty("not_started")[0].GetProperty("kind").GetString());
        Assert.Equal(0, json.RootElement.GetProperty("summary").GetArrayLength());   // an interrupted run is no result over seeds
        var markdown = File.ReadAllText(Path.Combine(outDir, "report.md"));
        Assert.Contains("| residual (interrupted) |", markdown, StringComparison.Ordinal);
        Assert.Contains("interrupted at step 7", markdown, StringComparison.Ordinal);
        Assert.Contains("Not started, because the comparison was stopped before them: hc.", markdown, StringComparison.Ordinal);
    }

    [FactWhen(Requirement.Linux, Requirement.SigintNotIgnored)]
    [Trait("Category", "Slow")]
    public void Ctrl_c_during_compare_reports_the_interrupted_kind_and_creates_no_folder_after_it()
    {
        using var temp = TestPaths.Temp();
        var config = temp.File("config.json");
        File.WriteAllText(config, Endless);
        var outDir = temp.File("cmp");
        var (code, stdout, stderr) = Interrupt(["compare", "--config", config, "--kinds", "residual,hc,mhc", "--out", outDir],
            Path.Combine(outDir, "residual", MetricsLog.FileName), "INT");

        Assert.Equal(ExitCodes.Cancelled, code);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        Assert.Contains("Not started, because the comparison was stopped before them: hc, mhc.", stdout, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(outDir, "hc")), "a folder was created for hc after the interrupt");
        Assert.False(Directory.Exists(Path.Combine(outDir, "mhc")), "a folder was created for mhc after the interrupt");
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")));
        var result = json.RootElement.GetProperty("results").EnumerateArray().Single();
        Assert.Equal("residual", result.GetProperty("kind").GetString());
        Assert.True(result.GetProperty("interrupted").GetBoolean());
        Assert.Equal(["hc", "mhc"], json.RootElement.GetProperty("not_started").EnumerateArray().Select(r => r.GetProperty("kind").GetString()));
    }
}
