using System.CommandLine;
using Mhc.Connections;
using Mhc.Training;

namespace Mhc.Cli;

/// <summary>
/// The options that shape a training run, shared by <c>train</c> and <c>compare</c>. Each overrides the
/// matching key of the <c>--config</c> file (or of the defaults) only when given.
/// </summary>
sealed class RunOptions
{
    public readonly Option<string?> Config = new("--config") { Description = "JSON run config (sections model, training, data; snake_case keys). Options below override it." };
    public readonly Option<string?> Task = new("--task") { Description = "language (default: a GPT on text) or vision (a ViT on images)." };
    public readonly Option<string?> Data = new("--data") { Description = "Text file or folder of .txt files (language), or a folder with one sub-folder of PNG/JPEG images per class (vision). Default: a built-in set." };
    public readonly Option<string?> Tokenizer = new("--tokenizer") { Description = "gpt2 (default for --data) or byte." };
    public readonly Option<int?> Streams = new("--streams") { Description = "Streams n for hc / mhc (default 4)." };
    public readonly Option<int?> Layers = new("--layers") { Description = "Transformer blocks (two sub-layers each)." };
    public readonly Option<int?> DModel = new("--d-model") { Description = "Model width d." };
    public readonly Option<int?> Heads = new("--heads") { Description = "Attention heads." };
    public readonly Option<int?> SeqLen = new("--seq-len") { Description = "Context length." };
    public readonly Option<int?> BatchSize = new("--batch-size") { Description = "Sequences per batch." };
    public readonly Option<double?> LearningRate = new Option<double?>("--lr") { Description = "Peak learning rate." }.Plain();
    public readonly Option<int?> Steps = new("--steps") { Description = "Optimizer steps." };
    public readonly Option<int?> Seed = new("--seed") { Description = "Seed of initialisation, batch order and dropout." };
    public readonly Option<int?> Threads = new("--threads") { Description = "CPU threads (0 = all cores)." };
    public readonly Option<bool> SkipNonFinite = new("--skip-nonfinite") { Description = "Skip steps whose loss or gradient is NaN/Inf instead of stopping." };
    public readonly Option<bool> Recompute = new("--recompute") { Description = "Keep only every L_r-th stream state and the branch outputs; recompute the rest in backward (less memory, more time)." };
    public readonly Option<int?> DiagnosticsEvery = new("--diagnostics-every") { Description = "Measure gains and coefficient statistics every N steps into metrics.jsonl (default 10; 0 = at evaluations only)." };
    public readonly Option<string?> Device = new("--device") { Description = "cpu (default; fused kernels), cuda or cuda:N (needs -p:TorchSharpBundle=cuda)." };
    public readonly Option<string?> Definition = new("--mhc-definition") { Description = "mHC's arithmetic: paper (default) or deepseek-v4 (ε in H_pre and Sinkhorn, as DeepSeek's code)." };
    public readonly Option<string?> ExitHead = new("--exit-head") { Description = "How the last stream state becomes one: sum (default) or learned (DeepSeek-V4's hc_head: per-token sigmoid weights; multi-stream kinds only, residual keeps sum)." };
    public readonly Option<string?> ResInit = new("--res-init") { Description = "mHC's b_res at step 0: identity (default; diagonal 0, off-diagonal −4) or uniform (all 0, as Megatron-LM)." };

    public IEnumerable<Option> All =>
        [Config, Task, Data, Tokenizer, Streams, Layers, DModel, Heads, SeqLen, BatchSize, LearningRate, Steps, Seed, Threads, SkipNonFinite, Recompute,
         DiagnosticsEvery, Device, Definition, ResInit, ExitHead];

    /// <summary>
    /// The config file if given, else <paramref name="basis"/> (a resumed run's stored config or a preset), else
    /// the defaults; then every option given on the command line.
    /// </summary>
    public RunConfig Build(ParseResult parse, ConnectionKind? kind, RunConfig? basis = null)
    {
        var path = parse.GetValue(Config);
        var config = path is not null ? RunConfig.Load(path) : basis ?? new RunConfig();
        return Apply(parse, config, kind);
    }

    /// <summary>Applies the command-line options to <paramref name="config"/>, with the connection kind set to <paramref name="kind"/> when given.</summary>
    public RunConfig Apply(ParseResult parse, RunConfig config, ConnectionKind? kind)
    {
        config = config with { Task = parse.GetValue(Task) ?? config.Task };
        var connection = WithKind(config.Connection, kind, parse.GetValue(Streams));
        if (parse.GetValue(Recompute)) connection = connection with { Recompute = true };
        if (parse.GetValue(Definition) is { } definition) connection = connection with { Definition = ManifoldDefinitionNames.Parse(definition) };
        if (parse.GetValue(ResInit) is { } resInit) connection = connection with { ResInit = ResInitNames.Parse(resInit) };
        if (parse.GetValue(ExitHead) is { } exitHead) connection = connection with { ExitHead = ExitHeadNames.Parse(exitHead) };
        if (config.Task == RunConfig.Vision)
        {
            if (parse.GetValue(SeqLen) is not null)
                throw new ArgumentException("--seq-len applies to --task language; a ViT's sequence is its patches (vit.image_size, vit.patch_size).");
            var vit = config.Vit;
            config = config with
            {
                Vit = vit with
                {
                    Layers = parse.GetValue(Layers) ?? vit.Layers,
                    DModel = parse.GetValue(DModel) ?? vit.DModel,
                    Heads = parse.GetValue(Heads) ?? vit.Heads,
                    Connection = connection,
                },
            };
        }
        else
        {
            var model = config.Model;
            config = config with
            {
                Model = model with
                {
                    Layers = parse.GetValue(Layers) ?? model.Layers,
                    DModel = parse.GetValue(DModel) ?? model.DModel,
                    Heads = parse.GetValue(Heads) ?? model.Heads,
                    SeqLen = parse.GetValue(SeqLen) ?? model.SeqLen,
                    Connection = connection,
                },
            };
        }
        var training = config.Training;
        var data = config.Data;
        return config with
        {
            Training = training with
            {
                Steps = parse.GetValue(Steps) ?? training.Steps,
                Seed = parse.GetValue(Seed) ?? training.Seed,
                Threads = parse.GetValue(Threads) ?? training.Threads,
                BatchSize = parse.GetValue(BatchSize) ?? training.BatchSize,
                LearningRate = parse.GetValue(LearningRate) ?? training.LearningRate,
                SkipNonFinite = parse.GetValue(SkipNonFinite) || training.SkipNonFinite,
                DiagnosticsEvery = parse.GetValue(DiagnosticsEvery) ?? training.DiagnosticsEvery,
                Device = parse.GetValue(Device) ?? training.Device,
            },
            Data = data with
            {
                Path = parse.GetValue(Data) ?? data.Path,
                Tokenizer = parse.GetValue(Tokenizer) ?? data.Tokenizer,
            },
        };
    }

    /// <summary>The <c>--out</c> directory as given, refused when it names a file (or a device such as /dev/null).</summary>
    public static string OutputDirectory(string path) =>
        File.Exists(path) ? throw new ArgumentException($"--out '{path}' is a file; expected a directory.") : path;

    /// <summary>
    /// The connection options for <paramref name="kind"/>: residual always has one stream (--streams applies to
    /// hc and mhc); a multi-stream kind takes <paramref name="streams"/>, else keeps the configured count, or 4
    /// when coming from residual. One stream keeps the sum as its exit head, so <c>--exit-head learned</c> serves a whole comparison.
    /// </summary>
    public static ConnectionOptions WithKind(ConnectionOptions current, ConnectionKind? kind, int? streams)
    {
        var target = kind ?? current.Kind;
        var n = target == ConnectionKind.Residual ? 1
            : streams ?? (current.Kind == ConnectionKind.Residual ? new ConnectionOptions().Streams : current.Streams);
        current = current with { ExitHead = n < 2 ? Connections.ExitHead.Sum : current.ExitHead };
        // mHC's own options (its arithmetic, b_res's init) apply to mHC only: other kinds in a comparison keep their defaults.
        return target.IsManifold()
            ? current with { Kind = target, Streams = n, Definition = target == ConnectionKind.Manifold ? current.Definition : ManifoldDefinition.Paper }
            : current with { Kind = target, Streams = n, Definition = ManifoldDefinition.Paper, ResInit = Connections.ResInit.Identity };
    }
}
