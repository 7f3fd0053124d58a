using Mhc.Connections;
using Mhc.Models;
using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>A task whose data is loaded and whose config is resolved against it (vocabulary, classes).</summary>
/// <param name="Config">The config with data-dependent values filled in.</param>
/// <param name="DataDescription">What the data is, for reports.</param>
/// <param name="Create">Builds a fresh task (model and batches) over the loaded data.</param>
public sealed record PreparedTask(RunConfig Config, string DataDescription, Func<RunConfig, ITrainingTask> Create)
{
    /// <summary>What the data is, as <see cref="Training.DataFingerprint"/> (checkpoints keep it; null = unknown).</summary>
    public string? DataFingerprint { get; init; }
}

/// <summary>Loads a run's data once and builds its tasks: the language model or the vision model.</summary>
public static class TrainingTasks
{
    /// <summary>The model of <paramref name="config"/> (a <see cref="Gpt"/> or a <see cref="Vit"/>), freshly initialised, on the CPU.</summary>
    /// <param name="config">A resolved run configuration (vocabulary or classes set).</param>
    public static nn.Module<Tensor, Tensor> CreateModel(RunConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        return config.Task == RunConfig.Vision ? new Vit(config.Vit) : new Gpt(config.Model);
    }

    /// <summary>Loads the data of <paramref name="config"/> and resolves the model's data-dependent sizes.</summary>
    /// <param name="config">Run configuration (validated here).</param>
    /// <param name="cacheDirectory">Where tokenised text is cached (null = no cache).</param>
    public static PreparedTask Prepare(RunConfig config, string? cacheDirectory)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        if (config.Task == RunConfig.Vision)
        {
            var images = config.Data.LoadImages(config.Vit.ImageSize);
            var resolved = config with { Vit = config.Vit with { Classes = images.ClassNames.Count, Channels = images.Channels } };
            return new PreparedTask(resolved, images.Description, c => new VisionTask(c, images))
            {
                DataFingerprint = config.Data.Path is null ? Training.DataFingerprint.BuiltIn : Training.DataFingerprint.Of(images),
            };
        }
        var corpus = config.Data.Load(config.Model.SeqLen, cacheDirectory);
        var language = config with { Model = config.Model with { VocabSize = corpus.VocabSize } };
        return new PreparedTask(language, corpus.Description, c => new LanguageModelTask(c, corpus))
        {
            DataFingerprint = config.Data.Path is null ? Training.DataFingerprint.BuiltIn : Training.DataFingerprint.Of(corpus),
        };
    }
}
