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
        var blocks = config.Task == RunConfig.Vision ? config.Vit.Layers : config.Model.Layers;
        // MUDDFormer keeps every block's output, whatever --streams says; RMT's n sets its memory's shape.
        var streams = c.Kind switch
        {
            ConnectionKind.MultiwayDense => $"{blocks + 1} slots",
            ConnectionKind.ResidualMatrix => $"n = {c.Streams}: {c.Streams * c.Streams}-row memory",
            _ => $"n = {c.Streams}",
        };
        return config.Task == RunConfig.Vision
            ? $"ViT {c.Kind.ToName()} ({streams}), {config.Vit.Layers} blocks, d = {config.Vit.DModel}, {config.Vit.ImageSize}×{config.Vit.ImageSize} images in {config.Vit.PatchSize}×{config.Vit.PatchSize} patches"
            : $"GPT {c.Kind.ToName()} ({streams}), {config.Model.Layers} blocks, d = {config.Model.DModel}, context {config.Model.SeqLen}";
    }
}
