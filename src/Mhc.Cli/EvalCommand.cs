using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Mhc.Data;
using Mhc.Models;
using Mhc.Training;
using TorchSharp;

namespace Mhc.Cli;

/// <summary>
/// <c>mhc eval</c>: validation loss and perplexity of a trained language model (accuracy of a vision model) on its run's
/// validation batches, or on a whole text (<c>--data</c>) cut into consecutive windows.
/// </summary>
static class EvalCommand
{
    public static Command Create()
    {
        var source = new ModelSource.Options();
        var data = new Option<string?>("--data") { Description = "Language models: evaluate on this text file or folder, the whole of it, instead of the run's validation batches." };
        var maxTokens = new Option<long?>("--max-tokens") { Description = "With --data: evaluate only the first N tokens." };
        var command = new Command("eval", "Validation loss and perplexity (language) or accuracy (vision) of a trained model.") { data, maxTokens };
        foreach (var option in source.All) command.Options.Add(option);
        command.SetAction(parse => CliErrors.Run(parse.GetValue(GlobalOptions.Verbose), () =>
        {
            var loaded = source.Resolve(parse);
            var config = loaded.Config;
            if (parse.GetValue(data) is { } path)
            {
                if (config.Task != RunConfig.Language)
                    throw new ArgumentException("--data applies to language models; a vision model is evaluated on its run's validation images.");
                return WholeText(loaded, path, parse.GetValue(maxTokens));
            }
            if (parse.GetValue(maxTokens) is not null) throw new ArgumentException("--max-tokens applies with --data.");
            var prepared = TrainCommand.Prepare(config, loaded.CacheDirectory);
            if (loaded.DataFingerprint is { } trained && prepared.DataFingerprint is { } now && trained != now)
                Console.Error.WriteLine($"warning: data '{config.Data.Path}' has changed since {loaded.Description} was trained on it (fingerprint {now}, then {trained}); evaluating on the data as it is now.");
            var batches = config.Training.EvalBatches;
            using var task = prepared.Create(config);
            loaded = loaded.LoadInto(task.Model);
            var evaluation = task.Evaluate(batches);
            Console.WriteLine($"{loaded.Description}, {RunDescription.Model(config)}");
            Console.WriteLine(evaluation.Accuracy is { } accuracy
                ? string.Create(CultureInfo.InvariantCulture, $"validation loss {evaluation.Loss:F6}, top-1 accuracy {accuracy:P2} ({batches * config.Training.BatchSize} validation images)")
                : string.Create(CultureInfo.InvariantCulture, $"validation loss {evaluation.Loss:F6} nats/token, perplexity {Math.Exp(evaluation.Loss):F2} ({batches * config.Training.BatchSize} validation windows of {config.Model.SeqLen} tokens)"));
            if (task.OptimalValidationLoss(batches) is { } optimum)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"corpus optimum {optimum:F4} (gap {evaluation.Loss - optimum:F4})"));
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>The whole text (or its first <paramref name="maxTokens"/> tokens), with progress on stderr for long texts.</summary>
    static int WholeText(ModelSource loaded, string path, long? maxTokens)
    {
        if (maxTokens is < 2) throw new ArgumentException($"--max-tokens = {maxTokens} is out of range: allowed >= 2 (one token predicts the next).");
        var config = loaded.Config;
        var (tokens, name) = TextCorpus.Tokens(path, loaded.Tokenizer, loaded.CacheDirectory);
        var used = maxTokens is { } max && max < tokens.Length ? tokens[..(int)max] : tokens;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"data: {name}, {loaded.Tokenizer.Name} tokens: {tokens.Length:N0}{(used.Length < tokens.Length ? $", the first {used.Length:N0} evaluated" : ", all evaluated")}"));
        using var model = new Gpt(config.Model);
        loaded = loaded.LoadInto(model);
        model.to(Devices.Resolve(config.Training.Device));
        var clock = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        var result = WholeTextEvaluation.Run(model, used, config.Training.BatchSize, (done, total) =>
        {
            if (clock.Elapsed - lastReport < TimeSpan.FromSeconds(5) || done == total) return;
            lastReport = clock.Elapsed;
            var remaining = TimeSpan.FromSeconds(clock.Elapsed.TotalSeconds * (total - done) / done);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"evaluated {done:N0} / {total:N0} tokens ({100.0 * done / total:F0}%), {TrainingDisplay.Duration(remaining.TotalSeconds)} left"));
        });
        Console.WriteLine($"{loaded.Description}, {RunDescription.Model(config)}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"validation loss {result.Loss:F6} nats/token, perplexity {Math.Exp(result.Loss):F2} ({result.Tokens:N0} tokens predicted in {result.Windows:N0} consecutive windows of up to {config.Model.SeqLen})"));
        return ExitCodes.Success;
    }
}
