using System.CommandLine;
using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Cli;

/// <summary><c>mhc sample</c>: generates text from a trained language model.</summary>
static class SampleCommand
{
    /// <summary>Prompt for models of the built-in language: the answer is 3, two hops away.</summary>
    public const string SyntheticPrompt = "c=3;a=c;q=7;b=a;?b>";

    /// <summary>Most tokens one call generates (minutes of output on a CPU).</summary>
    const int MaxTokens = 1_000_000;

    public static Command Create()
    {
        var source = new ModelSource.Options();
        var prompt = new Option<string?>("--prompt") { Description = $"Text to continue (default: a newline; for the built-in language \"{SyntheticPrompt}\")." };
        var tokens = new Option<int>("--tokens") { Description = "Tokens to generate.", DefaultValueFactory = _ => 200 };
        var temperature = new Option<double>("--temperature") { Description = "Softmax temperature (0 = greedy).", DefaultValueFactory = _ => 0.8 }.Plain();
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens (0 = all).", DefaultValueFactory = _ => 40 };
        var seed = new Option<int>("--seed") { Description = "Sampling seed.", DefaultValueFactory = _ => 0 };
        var command = new Command("sample", "Generate text from a trained language model.") { prompt, tokens, temperature, topK, seed };
        foreach (var option in source.All) command.Options.Add(option);
        command.SetAction(parse => CliErrors.Run(parse.GetValue(GlobalOptions.Verbose), () =>
        {
            var count = parse.GetValue(tokens);
            var t = parse.GetValue(temperature);
            var k = parse.GetValue(topK);
            if (count is < 0 or > MaxTokens) throw new ArgumentException($"--tokens = {count} is out of range: allowed 0..{MaxTokens}.");
            if (!float.IsFinite((float)t) || t < 0) throw new ArgumentException($"--temperature = {t} is out of range: allowed >= 0, finite in float32.");
            if (k < 0) throw new ArgumentException($"--top-k = {k} is out of range: allowed >= 0 (0 = all).");
            var loaded = source.Resolve(parse);
            var config = loaded.Config;
            if (config.Task != Training.RunConfig.Language)
                throw new ArgumentException($"{loaded.Description} is a {config.Task} model; sample generates text from language models (use mhc eval).");
            var tokenizer = loaded.Tokenizer;
            var text = parse.GetValue(prompt) ?? (config.Data.Path is null ? SyntheticPrompt : "\n");
            var ids = tokenizer.Encode(text);
            if (ids.Length == 0) throw new ArgumentException("--prompt encodes to no tokens; give at least one character.");
            using var model = new Gpt(config.Model);
            _ = loaded.LoadInto(model);   // a newer checkpoint loaded instead is named in a note
            model.to(Training.Devices.Resolve(config.Training.Device));
            model.eval();
            using var generator = new Generator((ulong)parse.GetValue(seed));
            // Text appears as it is generated; a token that ends inside a multi-byte character waits for the next.
            Console.Write(text);
            var pending = new List<int>();
            model.Generate(ids, count, t, k, generator, onToken: id =>
            {
                pending.Add(id);
                var piece = tokenizer.Decode(pending);
                if (piece.EndsWith('\uFFFD') && pending.Count < 4) return;
                Console.Write(piece);
                pending.Clear();
            });
            Console.WriteLine(tokenizer.Decode(pending));
            return ExitCodes.Success;
        }));
        return command;
    }
}
