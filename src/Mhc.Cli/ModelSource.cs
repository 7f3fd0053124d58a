using System.CommandLine;
using Mhc.Data;
using Mhc.Interop;
using Mhc.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Cli;

/// <summary>
/// Where <c>eval</c>, <c>sample</c> and <c>inspect</c> take a trained model from: a run's newest intact checkpoint
/// (<c>--checkpoint</c>), or a weight file (<c>--weights</c>) whose model config comes from its metadata or from
/// <c>--config</c>. <c>--device</c> chooses where it runs.
/// </summary>
sealed record ModelSource
{
    public sealed class Options
    {
        public readonly Option<string?> Checkpoint = new("--checkpoint") { Description = "Run directory or checkpoint folder." };
        public readonly Option<string?> Weights = new("--weights") { Description = "A weight file (.safetensors or .pt, hf or mhcnet layout) instead of a checkpoint." };
        public readonly Option<string?> Config = new("--config") { Description = "With --weights: the run config of the model (default: the file's metadata)." };
        public readonly Option<string?> Device = new("--device") { Description = "cpu (default), cuda or cuda:N." };

        public IEnumerable<Option> All => [Checkpoint, Weights, Config, Device];

        public ModelSource Resolve(ParseResult parse)
        {
            var (checkpoint, weights, config) = (parse.GetValue(Checkpoint), parse.GetValue(Weights), parse.GetValue(Config));
            if ((checkpoint is null) == (weights is null))
                throw new ArgumentException("give the model as --checkpoint DIR (a run) or --weights FILE (a weight file), one of the two.");
            if (config is not null && weights is null)
                throw new ArgumentException("--config applies with --weights; a checkpoint carries its own config.");
            var source = checkpoint is not null ? FromCheckpoint(checkpoint) : FromWeights(weights!, config);
            if (parse.GetValue(Device) is { } device)
                source = source with { Config = source.Config with { Training = source.Config.Training with { Device = device } } };
            Devices.Resolve(source.Config.Training.Device);
            return source;
        }
    }

    /// <summary>The model's run config.</summary>
    public required RunConfig Config { get; init; }

    /// <summary>"checkpoint '…' (step N)" or "weights '…' (safetensors, hf layout)".</summary>
    public required string Description { get; init; }

    /// <summary>Where tokenised text is cached for this model's data.</summary>
    public required string CacheDirectory { get; init; }

    /// <summary>
    /// Loads the weights into a model built from <see cref="Config"/> and returns where they came from: this source, or for a
    /// checkpoint that a training running in the run retired meanwhile, the newer one loaded instead.
    /// </summary>
    public required Func<nn.Module, ModelSource> LoadInto { get; init; }

    /// <summary>The checkpoint folder and its step, when the model comes from a checkpoint.</summary>
    public (string Directory, long Step)? Checkpoint { get; init; }

    /// <summary>The data the checkpoint's run trained on (<see cref="Training.DataFingerprint"/>), when the checkpoint records it.</summary>
    public string? DataFingerprint { get; init; }

    /// <summary>The weight file, when the model comes from one.</summary>
    public string? Weights { get; init; }

    /// <summary>The tokenizer of the model's data: bytes for the built-in language, else the run's (GPT-2 by default).</summary>
    public ITextTokenizer Tokenizer => Tokenizers.Create(Config.Data.Path is null ? "byte" : Config.Data.Tokenizer ?? "gpt2");

    /// <summary>The newest intact checkpoint of a run directory, or the given checkpoint folder.</summary>
    public static ModelSource FromCheckpoint(string path)
    {
        if (File.Exists(path)) throw new CheckpointException($"checkpoint path '{path}' is a file; expected a run directory or a step-NNNNNN folder (a weight file goes with --weights).");
        if (!Directory.Exists(path)) throw new CheckpointException($"checkpoint path '{path}' does not exist.");
        var checkpoint = Training.Checkpoint.Latest(path, Warn)
            ?? throw new CheckpointException($"'{path}' holds no checkpoint (expected a run directory with {Training.Checkpoint.FolderName}/ or a step-NNNNNN folder).");
        return Of(path, checkpoint);
    }

    static ModelSource Of(string path, Training.Checkpoint checkpoint) => new()
    {
        Config = checkpoint.State.Config,
        Description = $"checkpoint '{checkpoint.Directory}' (step {checkpoint.State.Step})",
        CacheDirectory = TrainCommand.CacheBeside(checkpoint.RunDirectory),
        LoadInto = model => Load(path, checkpoint, model),
        Checkpoint = (checkpoint.Directory, checkpoint.State.Step),
        DataFingerprint = checkpoint.State.DataFingerprint,
    };

    static void Warn(string warning) => Console.Error.WriteLine($"warning: {warning}");

    /// <summary>
    /// Loads <paramref name="checkpoint"/>; if a training running in the run retired it since it was listed (it keeps only
    /// its newest two), loads the run's newest checkpoint instead: the same run, so the same config.
    /// </summary>
    static ModelSource Load(string path, Training.Checkpoint checkpoint, nn.Module model)
    {
        try
        {
            checkpoint.LoadModel(model);
            return Of(path, checkpoint);
        }
        catch (CheckpointException) when (!Directory.Exists(checkpoint.Directory) && Training.Checkpoint.Latest(path, Warn) is { } newer)
        {
            Console.Error.WriteLine($"note: checkpoint '{checkpoint.Directory}' was retired by the training running in this run; loading '{newer.Directory}' (step {newer.State.Step}) instead.");
            newer.LoadModel(model);
            return Of(path, newer);
        }
    }

    static ModelSource FromWeights(string path, string? configPath)
    {
        var info = ModelWeights.Open(path);
        RunConfig config;
        if (configPath is not null) config = RunConfig.Load(configPath);
        else if (info.Metadata.TryGetValue(ModelWeights.ConfigKey, out var json))
        {
            try
            {
                config = RunConfig.FromJson(json);
                config.Validate();
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException)
            {
                throw new WeightFileException($"weight file '{path}' has a model config in its metadata that cannot be used: {e.Message}", e);
            }
        }
        else
            throw new ArgumentException($"weight file '{path}' carries no model config ({(info.Format == WeightFormat.PyTorch ? "PyTorch state_dict files have no metadata" : $"no {ModelWeights.ConfigKey} in its metadata")}): pass the run config with --config.");
        ModelSource? source = null;
        source = new ModelSource
        {
            Config = config,
            Description = $"weights '{path}' ({info.Format.Name()}, {info.Layout.Name()} layout)",
            CacheDirectory = TrainCommand.CacheBeside(path),
            LoadInto = model =>
            {
                ModelWeights.Load(model, path);
                return source!;
            },
            Weights = path,
        };
        return source;
    }
}
