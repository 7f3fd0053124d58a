using System.CommandLine;
using System.Globalization;
using Mhc.Data;
using Mhc.Training;

namespace Mhc.Cli;

/// <summary><c>mhc eval</c>: validation loss and perplexity of a trained language model.</summary>
static class EvalCommand
{
    public static Command Create()
    {
        var source = new ModelSource.Options();
        var data = new Option<string?>("--data") { Description = "Language models: evaluate on this text file or folder (whole) instead of the run's validation split." };
        var command = new Command("eval", "Validation loss and perplexity (language) or accuracy (vision) of a trained model.") { data };
        foreach (var option in source.All) command.Options.Add(option);
        command.SetAction(parse => CliErrors.Run(parse.GetValue(GlobalOptions.Verbose), () =>
        {
            var loaded = source.Resolve(parse);
            var config = loaded.Config;
            PreparedTask prepared;
            int batches;
            if (parse.GetValue(data) is { } path)
            {
                if (config.Task != RunConfig.Language)
                    throw new ArgumentException("--data applies to language models; a vision model is evaluated on its run's validation images.");
                // The whole text, cut into consecutive windows covering it.
                var seqLen = config.Model.SeqLen;
                var tokens = TextCorpus.Load(path, loaded.Tokenizer, 0.5, seqLen, cacheDirectory: null);
                var all = tokens.Train.Concat(tokens.Validation).ToArray();
                var corpus = new TokenCorpus { Description = tokens.Description, TokenizerName = tokens.TokenizerName, VocabSize = tokens.VocabSize, Train = all, Validation = all };
                Console.WriteLine($"data: {tokens.Description}");
                prepared = new PreparedTask(config, tokens.Description, c => new LanguageModelTask(c, corpus));
                batches = Math.Max(1, (int)Math.Ceiling((double)(all.Length - 1) / seqLen / config.Training.BatchSize));
            }
            else
            {
                prepared = TrainCommand.Prepare(config, loaded.CacheDirectory);
                batches = config.Training.EvalBatches;
            }
            using var task = prepared.Create(config);
            loaded.LoadInto(task.Model);
            var evaluation = task.Evaluate(batches);
            Console.WriteLine($"{loaded.Description}, {RunDescription.Model(config)}");
            Console.WriteLine(evaluation.Accuracy is { } accuracy
                ? string.Create(CultureInfo.InvariantCulture, $"validation loss {evaluation.Loss:F4}, top-1 accuracy {accuracy:P2} ({batches * config.Training.BatchSize} images)")
                : string.Create(CultureInfo.InvariantCulture, $"validation loss {evaluation.Loss:F4} nats/token, perplexity {Math.Exp(evaluation.Loss):F2} ({batches * config.Training.BatchSize} windows of {config.Model.SeqLen} tokens)"));
            if (task.OptimalValidationLoss(batches) is { } optimum)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"corpus optimum {optimum:F4} (gap {evaluation.Loss - optimum:F4})"));
            return ExitCodes.Success;
        }));
        return command;
    }
}
