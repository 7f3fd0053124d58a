using System.CommandLine;
using System.Globalization;
using Mhc.Interop;
using Mhc.Training;

namespace Mhc.Cli;

/// <summary>
/// <c>mhc export</c>: a run's model as a weight file, safetensors or PyTorch, in Llama / DeepSeek-V4 names (<c>hf</c>) or
/// ours (<c>mhcnet</c>). A safetensors file carries the run config, so <c>--weights</c> and <c>--init-from</c> need nothing else.
/// </summary>
static class ExportCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Run directory or checkpoint folder.", Required = true };
        var output = new Option<string>("--out") { Description = "The weight file to write (.safetensors or .pt).", Required = true };
        var layout = new Option<string>("--layout") { Description = "hf (Llama and DeepSeek-V4 names, default) or mhcnet (our state_dict names).", DefaultValueFactory = _ => "hf" };
        var format = new Option<string?>("--format") { Description = "safetensors or pt (default: from the file name)." };
        var dtype = new Option<string>("--dtype") { Description = "f32 (default), bf16 or f16; connection parameters stay f32.", DefaultValueFactory = _ => "f32" };
        var command = new Command("export", "Write a trained model's weights as a safetensors or PyTorch file.") { checkpoint, output, layout, format, dtype };
        command.SetAction(parse => CliErrors.Run(parse.GetValue(GlobalOptions.Verbose), () =>
        {
            var path = parse.GetValue(output)!;
            var options = new WeightFileOptions
            {
                Layout = WeightNames.ParseLayout(parse.GetValue(layout)!),
                Format = Format(path, parse.GetValue(format)),
                Precision = WeightNames.ParsePrecision(parse.GetValue(dtype)!),
            };
            if (Directory.Exists(path)) throw new ArgumentException($"--out '{path}' is a directory; expected a file name such as model.safetensors.");
            var loaded = ModelSource.FromCheckpoint(parse.GetValue(checkpoint)!);
            using var model = TrainingTasks.CreateModel(loaded.Config);
            loaded = loaded.LoadInto(model);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            ModelWeights.Save(model, path, options, new Dictionary<string, string> { [ModelWeights.ConfigKey] = loaded.Config.ToJson() });
            var info = ModelWeights.Open(path);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{path}: {info.Tensors.Count} tensors, {options.Format!.Value.Name()}, {options.Layout.Name()} layout, {options.Precision.Name()}, " +
                $"{new FileInfo(path).Length / 1e6:F1} MB, {clock.Elapsed.TotalSeconds:F2} s; from {loaded.Description}"));
            if (options.Format == WeightFormat.PyTorch)
                Console.WriteLine("note: PyTorch state_dict files carry no metadata; load this one with --weights FILE --config <the run's config.json>.");
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>The format asked for, else the one the file name implies; a contradiction or no clue is an error.</summary>
    static WeightFormat Format(string path, string? asked)
    {
        var implied = WeightNames.FormatOf(path);
        if (asked is null)
            return implied ?? throw new ArgumentException($"--out '{path}' ends in neither .safetensors nor .pt: name the format with --format safetensors|pt.");
        var format = WeightNames.ParseFormat(asked);
        if (implied is { } fromName && fromName != format)
            throw new ArgumentException($"--format {asked} contradicts the file name '{path}' ({fromName.Name()}).");
        return format;
    }
}
