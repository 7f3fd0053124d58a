using System.Text.Json;
using Mhc.Cli;
using Mhc.Training;

namespace Mhc.Tests;

/// <summary>
/// Weights through the command line: <c>mhc export</c>, <c>--weights</c> on eval / sample / inspect, <c>train --init-from</c>,
/// <c>--device</c>, and the errors bad files and missing devices give.
/// </summary>
public class WeightsCommandTests
{
    static readonly string[] Tiny = ["--layers", "1", "--d-model", "32", "--heads", "2", "--seq-len", "16", "--batch-size", "4"];

    /// <summary>Runs the tool in this process; its exit code and both outputs.</summary>
    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        var (originalOut, originalErr) = (Console.Out, Console.Error);
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            return (CliApp.Run(args), stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(originalOut);
            Console.SetError(originalErr);
        }
    }

    static string Ok((int Code, string Out, string Err) result)
    {
        Assert.True(result.Code == 0, $"exit {result.Code}: {result.Err}");
        return result.Out;
    }

    static string Line(string output, string start) => output.Split('\n').First(l => l.StartsWith(start, StringComparison.Ordinal)).Trim();

    static string TrainedRun(TempDirectory temp, string kind = "mhc")
    {
        var run = temp.File($"run-{kind}");
        Ok(Run(["train", "--steps", "3", "--connection", kind, "--out", run, .. Tiny]));
        return run;
    }

    [Fact]
    public void Exported_weights_evaluate_sample_and_inspect_as_the_checkpoint_does()
    {
        using var temp = TestPaths.Temp();
        var run = TrainedRun(temp);
        var weights = temp.File("model.safetensors");
        var exported = Ok(Run(["export", "--checkpoint", run, "--out", weights]));
        Assert.Contains("safetensors, hf layout, f32", exported, StringComparison.Ordinal);

        string Loss(string output) => Line(output, "validation loss").Split(',')[0];
        Assert.Equal(Loss(Ok(Run(["eval", "--checkpoint", run]))), Loss(Ok(Run(["eval", "--weights", weights]))));
        Assert.Equal(Ok(Run(["sample", "--checkpoint", run, "--tokens", "20"])), Ok(Run(["sample", "--weights", weights, "--tokens", "20"])));
        using var fromCheckpoint = JsonDocument.Parse(Ok(Run(["inspect", "--checkpoint", run, "--json"])));
        using var fromWeights = JsonDocument.Parse(Ok(Run(["inspect", "--weights", weights, "--json"])));
        Assert.Equal(fromCheckpoint.RootElement.GetProperty("sublayers").GetRawText(), fromWeights.RootElement.GetProperty("sublayers").GetRawText());
        Assert.Equal(weights, fromWeights.RootElement.GetProperty("weights").GetString());
    }

    [Fact]
    public void A_PyTorch_file_needs_the_config_and_then_gives_the_same_loss()
    {
        using var temp = TestPaths.Temp();
        var run = TrainedRun(temp, "hc");
        var weights = temp.File("model.pt");
        Assert.Contains("carry no metadata", Ok(Run(["export", "--checkpoint", run, "--out", weights, "--layout", "mhcnet"])), StringComparison.Ordinal);
        var missing = Run(["eval", "--weights", weights]);
        Assert.Equal(ExitCodes.InvalidArguments, missing.Code);
        Assert.Contains("pass the run config with --config", missing.Err, StringComparison.Ordinal);
        string Loss(string output) => Line(output, "validation loss").Split(',')[0];
        Assert.Equal(Loss(Ok(Run(["eval", "--checkpoint", run]))),
            Loss(Ok(Run(["eval", "--weights", weights, "--config", Path.Combine(run, Trainer.ConfigFile)]))));
    }

    [Fact]
    public void Train_init_from_starts_from_the_weights_and_records_them()
    {
        using var temp = TestPaths.Temp();
        var run = TrainedRun(temp);
        var weights = temp.File("model.safetensors");
        Ok(Run(["export", "--checkpoint", run, "--out", weights, "--layout", "hf"]));
        // A learning rate far below float32's resolution of the weights: the new run's weights are the file's.
        var next = temp.File("next");
        Ok(Run(["train", "--steps", "1", "--lr", "1e-30", "--init-from", weights, "--out", next, .. Tiny]));
        var config = RunConfig.FromJson(File.ReadAllText(Path.Combine(next, Trainer.ConfigFile)));
        Assert.Equal(weights, config.Training.InitFrom);
        string Loss(string output) => Line(output, "validation loss").Split(',')[0];
        Assert.Equal(Loss(Ok(Run(["eval", "--checkpoint", run]))), Loss(Ok(Run(["eval", "--checkpoint", next]))));
        // Weights of another architecture stop the run before it starts, naming the tensor.
        var wide = Run(["train", "--steps", "1", "--init-from", weights, "--out", temp.File("wide"), .. Tiny[..2], "--d-model", "64", .. Tiny[4..]]);
        Assert.Equal(ExitCodes.CheckpointError, wide.Code);
        Assert.Matches(@"tensor 'model\.embed_tokens\.weight' has shape \[\d+, 32\]; the model expects \[\d+, 64\]", wide.Err);
    }

    [Fact]
    public void Bad_weight_files_exit_4_with_one_line()
    {
        using var temp = TestPaths.Temp();
        File.WriteAllText(temp.File("junk.safetensors"), "this is not a weight file at all");
        var junk = Run(["eval", "--weights", temp.File("junk.safetensors")]);
        Assert.Equal(ExitCodes.CheckpointError, junk.Code);
        Assert.StartsWith("error: weight file", junk.Err, StringComparison.Ordinal);
        Assert.Single(junk.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(ExitCodes.CheckpointError, Run(["inspect", "--weights", temp.File("missing.safetensors")]).Code);
        Assert.Equal(ExitCodes.InvalidArguments, Run(["eval"]).Code);
        Assert.Equal(ExitCodes.InvalidArguments, Run(["eval", "--weights", "a", "--checkpoint", "b"]).Code);
        var run = TrainedRun(temp);
        Assert.Contains("ends in neither .safetensors nor .pt", Run(["export", "--checkpoint", run, "--out", temp.File("model.bin2")]).Err, StringComparison.Ordinal);
        Assert.Contains("contradicts the file name", Run(["export", "--checkpoint", run, "--out", temp.File("m.pt"), "--format", "safetensors"]).Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Device_cpu_is_the_default_bit_for_bit()
    {
        using var temp = TestPaths.Temp();
        Ok(Run(["train", "--steps", "3", "--out", temp.File("a"), .. Tiny]));
        Ok(Run(["train", "--steps", "3", "--device", "cpu", "--out", temp.File("b"), .. Tiny]));
        static IEnumerable<(long, double, double)> Losses(string run) =>
            File.ReadLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
                .Select(r => (r.GetProperty("step").GetInt64(), r.GetProperty("train_loss").GetDouble(), r.GetProperty("grad_norm").GetDouble()));
        Assert.Equal(Losses(temp.File("a")), Losses(temp.File("b")));
        Assert.Contains("training.device = 'gpu'", Run(["train", "--device", "gpu", "--out", temp.File("d")]).Err, StringComparison.Ordinal);
    }

    [FactWhen(Requirement.NoCuda)]
    public void Asking_for_cuda_without_cuda_is_one_line_and_exit_2()
    {
        using var temp = TestPaths.Temp();
        Ok(Run(["train", "--steps", "1", "--out", temp.File("a"), .. Tiny]));
        foreach (var args in new[] { new[] { "train", "--device", "cuda", "--out", temp.File("c") }, ["bench", "--device", "cuda:1"], ["eval", "--checkpoint", temp.File("a"), "--device", "cuda"] })
        {
            var result = Run(args);
            Assert.Equal(ExitCodes.InvalidArguments, result.Code);
            Assert.Contains("CUDA is not available here", result.Err, StringComparison.Ordinal);
            Assert.Single(result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
        Assert.False(Directory.Exists(temp.File("c")));
    }
}
