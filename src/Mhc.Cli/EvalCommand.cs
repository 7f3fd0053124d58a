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
        var checkpoint = new Option<string>("--checkpoint") { Description = "Run directory or checkpoint folder.", Required = true };
        var data = new Option<string?>("--data") { Description = "Evaluate on this text file or folder (whole) instead of the run's validation split." };
        var command = new Command("eval", "Validation loss and perplexity of a trained language model.") { checkpoint, data };
        command.SetAction(parse => CliErrors.Run(parse.GetValue(GlobalOptions.Verbose), () =>
        {
            var loaded = CheckpointLoader.Open(parse.GetValue(checkpoint)!);
            var config = loaded.State.Config;
            var seqLen = config.Model.SeqLen;
            TokenCorpus corpus;
            int batches;
            if (parse.GetValue(data) is { } path)
            {
                // The whole text, cut into consecutive windows covering it.
                var tokens = TextCorpus.Load(path, CheckpointLoader.TokenizerOf(config), 0.5, seqLen, cacheDirectory: null);
                var all = tokens.Train.Concat(tokens.Validation).ToArray();
                Console.WriteLine($"data: {tokens.Description}");
                corpus = new TokenCorpus { Description = tokens.Description, TokenizerName = tokens.TokenizerName, VocabSize = tokens.VocabSize, Train = all, Validation = all };
                batches = Math.Max(1, (int)Math.Ceiling((double)(all.Length - 1) / seqLen / config.Training.BatchSize));
            }
            else
            {
                corpus = TrainCommand.LoadCorpus(config, TrainCommand.CacheBeside(loaded.RunDirectory));
                batches = config.Training.EvalBatches;
            }
            using var task = new LanguageModelTask(config, corpus);
            loaded.LoadModel(task.Model);
            var evaluation = task.Evaluate(batches);
            var windows = batches * config.Training.BatchSize;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"checkpoint: {loaded.Directory} (step {loaded.State.Step})\nvalidation loss {evaluation.Loss:F4} nats/token, perplexity {Math.Exp(evaluation.Loss):F2} ({windows} windows of {seqLen} tokens)"));
            if (task.OptimalValidationLoss(batches) is { } optimum)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"corpus optimum {optimum:F4} (gap {evaluation.Loss - optimum:F4})"));
            return ExitCodes.Success;
        }));
        return command;
    }
}
