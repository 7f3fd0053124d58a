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

    public static Command Create()
    {
        var source = new ModelSource.Options();
        var prompt = new Option<string?>("--prompt") { Description = $"Text to continue (default: a newline; for the built-in language \"{SyntheticPrompt}\")." };
        var tokens = new Option<int>("--tokens") { Description = "Tokens to generate.", DefaultValueFactory = _ => 200 };
        var temperature = new Option<double>("--temperature") { Description = "Softmax temperature (0 = greedy).", DefaultValueFactory = _ => 0.8 };
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens (0 = all).", DefaultValueFactory = _ => 40 };
        var seed = new Option<int>("--seed") { Description = "Sampling seed.", DefaultValueFactory = _ => 0 };
        var command = new Command("sample", "Generate text from a trained language model.") { prompt, tokens, temperature, topK, seed };
        foreach (var option in source.All) command.Options.Add(option);
        command.SetAction(parse => CliErrors.Run(parse.GetValue(GlobalOptions.Verbose), () =>
        {
            var count = parse.GetValue(tokens);
            var t = parse.GetValue(temperature);
            var k = parse.GetValue(topK);
            if (count < 0) throw new ArgumentException($"--tokens = {count} is out of range: allowed >= 0.");
            if (!double.IsFinite(t) || t < 0) throw new ArgumentException($"--temperature = {t} is out of range: allowed >= 0.");
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
            loaded.LoadInto(model);
            model.to(Training.Devices.Resolve(config.Training.Device));
            model.eval();
            using var generator = new Generator((ulong)parse.GetValue(seed));
            var completion = model.Generate(ids, count, t, k, generator);
            Console.WriteLine(text + tokenizer.Decode(completion));
            return ExitCodes.Success;
        }));
        return command;
    }
}
