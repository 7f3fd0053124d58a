using Mhc.Data;
using Mhc.Training;

namespace Mhc.Cli;

/// <summary>Finds the checkpoint behind <c>--checkpoint</c> (a run directory or one checkpoint folder) and its tokenizer.</summary>
static class CheckpointLoader
{
    public static Checkpoint Open(string path)
    {
        if (!Directory.Exists(path)) throw new CheckpointException($"checkpoint path '{path}' does not exist.");
        return Checkpoint.Latest(path, warning => Console.Error.WriteLine($"warning: {warning}"))
            ?? throw new CheckpointException($"'{path}' holds no checkpoint (expected a run directory with {Checkpoint.FolderName}/ or a step-NNNNNN folder).");
    }

    public static ITextTokenizer TokenizerOf(RunConfig config) =>
        Tokenizers.Create(config.Data.Path is null ? "byte" : config.Data.Tokenizer ?? "gpt2");
}
