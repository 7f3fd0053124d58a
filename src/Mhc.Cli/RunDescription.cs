using Mhc.Connections;
using Mhc.Training;

namespace Mhc.Cli;

/// <summary>How the tool names a run's model in summaries, reports and inspections.</summary>
static class RunDescription
{
    /// <summary>One line describing the model of <paramref name="config"/>.</summary>
    public static string Model(RunConfig config)
    {
        var c = config.Connection;
        return config.Task == RunConfig.Vision
            ? $"ViT {c.Kind.ToName()} (n = {c.Streams}), {config.Vit.Layers} blocks, d = {config.Vit.DModel}, {config.Vit.ImageSize}×{config.Vit.ImageSize} images in {config.Vit.PatchSize}×{config.Vit.PatchSize} patches"
            : $"GPT {c.Kind.ToName()} (n = {c.Streams}), {config.Model.Layers} blocks, d = {config.Model.DModel}, context {config.Model.SeqLen}";
    }
}
