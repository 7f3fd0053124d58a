using System.Diagnostics;
using Mhc.Data;
using Mhc.Training;
using Xunit.Abstractions;

namespace Mhc.Tests;

/// <summary>
/// A training process killed with SIGKILL at random moments, then resumed, must end with exactly the
/// losses of an uninterrupted run: checkpoints are atomic, a torn metrics line is dropped, stale temporary
/// folders are ignored.
/// </summary>
public class CrashSafetyTests(ITestOutputHelper output)
{
    const int Steps = 40;

    static string WriteConfig(string folder)
    {
        var config = new RunConfig
        {
            Model = new() { DModel = 32, Layers = 2, Heads = 2, SeqLen = 16, Dropout = 0.1 },
            Training = new() { Steps = Steps, BatchSize = 4, EvalEvery = 10, EvalBatches = 1, CheckpointEvery = 4, Threads = 2, Seed = 21, WarmupSteps = 4 },
            Data = new() { CorpusDocuments = 400 },
        };
        var path = Path.Combine(folder, "config.json");
        File.WriteAllText(path, config.ToJson());
        return path;
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void Killed_runs_resume_to_the_losses_of_an_uninterrupted_run()
    {
        using var temp = TestPaths.Temp();
        var config = WriteConfig(temp.Path);
        var whole = Path.Combine(temp.Path, "whole");
        var (code, _, err) = CliProcess.Run("train", "--config", config, "--out", whole);
        Assert.True(code == 0, err);
        var expected = MetricsLog.Read(Path.Combine(whole, MetricsLog.FileName));
        Assert.Equal(Steps, expected.Count);

        var rng = new SplitMix64(2026);
        var killedAt = new List<int>();
        for (var attempt = 0; attempt < 6; attempt++)
        {
            var run = Path.Combine(temp.Path, $"killed-{attempt}");
            // Kill once the log has reached a random step: before the first checkpoint, between, or during one.
            var target = attempt == 0 ? 1 : 2 + (int)rng.NextInt64(Steps - 4);
            using (var process = Process.Start(CliProcess.StartInfo(CliProcess.Executable, ["train", "--config", config, "--out", run]))!)
            {
                process.OutputDataReceived += (_, _) => { };
                process.ErrorDataReceived += (_, _) => { };
                process.BeginOutputReadLine();
                process.BeginErrorReadLine();
                var metrics = Path.Combine(run, MetricsLog.FileName);
                var clock = Stopwatch.StartNew();
                while (!process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2)
                       && (!File.Exists(metrics) || File.ReadLines(metrics).Count() < target))
                    Thread.Sleep(2);
                process.Kill();   // SIGKILL
                process.WaitForExit();
            }
            var logged = File.Exists(Path.Combine(run, MetricsLog.FileName)) ? File.ReadLines(Path.Combine(run, MetricsLog.FileName)).Count() : 0;
            killedAt.Add(logged);
            var resumed = CliProcess.Run("train", "--config", config, "--out", run, "--resume");
            Assert.True(resumed.Code == 0, $"resume after a kill at step {logged} failed: {resumed.Err}");
            var actual = MetricsLog.Read(Path.Combine(run, MetricsLog.FileName));
            Assert.Equal(expected.Select(r => (r.Step, r.TrainLoss, r.ValLoss, r.GradNorm)), actual.Select(r => (r.Step, r.TrainLoss, r.ValLoss, r.GradNorm)));
            Assert.Empty(Directory.GetDirectories(Path.Combine(run, Checkpoint.FolderName), "*.tmp-*"));
        }
        output.WriteLine($"killed after these logged steps: {string.Join(", ", killedAt)}");
        Assert.True(killedAt.Distinct().Count() >= 5, $"want at least 5 different kill moments; got {string.Join(", ", killedAt)}");
    }
}
