using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Mhc.Cli.Benchmarks;
using Mhc.Connections;
using Mhc.Diagnostics;

namespace Mhc.Cli;

/// <summary><c>mhc bench</c>: training-step time and memory of plain, residual, HC and mHC side by side.</summary>
static class BenchCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset")
        {
            Description = "s (d 128, 4 blocks, 4 heads, seq 128, batch 16: the compare default), m (d 256, 6 blocks, seq 256, batch 8), r1 (d 512, 8 blocks, 8 heads, seq 256, batch 8) or r2 (d 1024, 16 heads, batch 4).",
            DefaultValueFactory = _ => "r1",
        };
        var dModel = new Option<int?>("--d-model") { Description = "Model width." };
        var layers = new Option<int?>("--layers") { Description = "Transformer blocks." };
        var heads = new Option<int?>("--heads") { Description = "Attention heads." };
        var seq = new Option<int?>("--seq") { Description = "Sequence length." };
        var batch = new Option<int?>("--batch") { Description = "Sequences per step." };
        var streams = new Option<int?>("--streams") { Description = "Streams of hc and mhc (default 4)." };
        var threads = new Option<int?>("--threads") { Description = "CPU threads (default 2)." };
        var steps = new Option<int?>("--steps") { Description = "Timed steps per kind (default 10)." };
        var kinds = new Option<string>("--kinds") { Description = $"Comma-separated kinds among plain, {string.Join(", ", ConnectionKindNames.All)}.", DefaultValueFactory = _ => "plain,residual,hc,mhc" };
        var reference = new Option<bool>("--reference") { Description = "Time the reference (unfused) connection path." };
        var recompute = new Option<bool>("--recompute") { Description = "Time hc and mhc with recomputation (memory for time)." };
        var json = new Option<bool>("--json") { Description = "Print only JSON on stdout (progress goes to stderr)." };
        var device = new Option<string>("--device") { Description = "cpu (default), cuda or cuda:N.", DefaultValueFactory = _ => "cpu" };
        var vocab = new Option<int?>("--vocab") { Description = "Vocabulary (default 256). Another value also times residual at 256 and the head's products alone, for the head's overhead." };
        var generate = new Option<bool>("--generate") { Description = "Time generation with the key-value cache (ms per new token) instead of training steps." };
        var prompt = new Option<int>("--prompt") { Description = "With --generate: prompt tokens.", DefaultValueFactory = _ => 64 };
        var tokens = new Option<int>("--tokens") { Description = "With --generate: new tokens per round.", DefaultValueFactory = _ => 256 };
        var command = new Command("bench", "Time training steps of plain, residual, HC, mHC (and its variants) models side by side (interleaved, one process).")
        {
            preset, dModel, layers, heads, seq, batch, streams, threads, steps, kinds, reference, recompute, json, device, vocab, generate, prompt, tokens,
        };
        command.SetAction(parse => CliErrors.Run(parse.GetValue(GlobalOptions.Verbose), () =>
        {
            var name = parse.GetValue(preset)!;
            if (!BenchConfig.Presets.TryGetValue(name, out var basis))
                throw new ArgumentException($"--preset = '{name}' is unknown: allowed {string.Join(", ", BenchConfig.Presets.Keys)}.");
            var config = basis with
            {
                DModel = parse.GetValue(dModel) ?? basis.DModel,
                Layers = parse.GetValue(layers) ?? basis.Layers,
                Heads = parse.GetValue(heads) ?? basis.Heads,
                Seq = parse.GetValue(seq) ?? basis.Seq,
                Batch = parse.GetValue(batch) ?? basis.Batch,
                Streams = parse.GetValue(streams) ?? basis.Streams,
                Threads = parse.GetValue(threads) ?? basis.Threads,
                Steps = parse.GetValue(steps) ?? basis.Steps,
                Reference = parse.GetValue(reference),
                Recompute = parse.GetValue(recompute),
                Device = parse.GetValue(device)!,
                Vocab = parse.GetValue(vocab) ?? basis.Vocab,
            };
            if (config.Reference && config.Recompute) throw new ArgumentException("--recompute applies to the fused path; drop --reference.");
            Validate(config);
            var kindList = parse.GetValue(kinds)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            string[] allowed = ["plain", .. ConnectionKindNames.All];
            foreach (var k in kindList)
                if (!allowed.Contains(k))
                    throw new ArgumentException($"--kinds: '{k}' is unknown: allowed {string.Join(", ", allowed)}.");
            var asJson = parse.GetValue(json);
            if (parse.GetValue(generate))
            {
                var (p, t) = (parse.GetValue(prompt), parse.GetValue(tokens));
                if (p < 1 || p > config.Seq) throw new ArgumentException($"--prompt = {p} is out of range: allowed 1..{config.Seq} (the context).");
                if (t < 2 || t > 100_000) throw new ArgumentException($"--tokens = {t} is out of range: allowed 2..100000.");
                var generation = GenerationBenchmark.Run(config, kindList, p, t, line => Console.Error.WriteLine(line));
                if (asJson) Console.WriteLine(JsonSerializer.Serialize(new { config, prompt = p, tokens = t, results = generation }, Json));
                else PrintGeneration(config, p, t, generation);
                return ExitCodes.Success;
            }
            var (results, vocabReference) = StepBenchmark.Run(config, kindList, line => Console.Error.WriteLine(line));
            if (asJson)
                Console.WriteLine(JsonSerializer.Serialize(new { config, results, vocab = vocabReference }, Json));
            else
                Print(config, results, vocabReference);
            return ExitCodes.Success;
        }));
        return command;
    }

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    static void Validate(BenchConfig c)
    {
        void Require(bool ok, string option, int value, string range)
        {
            if (!ok) throw new ArgumentException($"{option} = {value} is out of range: allowed {range}.");
        }
        Require(c.DModel is >= 2 and <= 65_536, "--d-model", c.DModel, "2..65536");
        Require(c.Layers is >= 1 and <= 4_096, "--layers", c.Layers, "1..4096");
        Require(c.Heads >= 1 && c.DModel % c.Heads == 0 && c.DModel / c.Heads % 2 == 0, "--heads", c.Heads, $"a divisor of d_model = {c.DModel} giving an even head width");
        Require(c.Seq is >= 1 and <= 1_048_576, "--seq", c.Seq, "1..1048576");
        Require(c.Batch is >= 1 and <= 1_048_576, "--batch", c.Batch, "1..1048576");
        Require(c.Streams is >= 2 and <= 64, "--streams", c.Streams, "2..64");
        Require(c.Threads is >= 1 and <= 4_096, "--threads", c.Threads, "1..4096");
        Require(c.Steps is >= 1 and <= 1_000_000, "--steps", c.Steps, "1..1000000");
        Require(c.Vocab is >= 2 and <= 1_000_000, "--vocab", c.Vocab, "2..1000000");
        // The memory a training step of the widest kind needs, in bench's own option names.
        var run = new Training.RunConfig
        {
            Model = new Models.GptConfig { DModel = c.DModel, Layers = c.Layers, Heads = c.Heads, SeqLen = c.Seq, VocabSize = c.Vocab, Connection = new() { Streams = c.Streams } },
            Training = new Training.TrainingOptions { BatchSize = c.Batch },
            Data = new Training.DataOptions { Path = "(bench: random tokens)" },
        };
        try
        {
            Training.TrainingMemory.EnsureFits(run);
        }
        catch (ArgumentException e)
        {
            var message = e.Message;
            foreach (var (key, option) in new[] { ("model.d_model", "--d-model"), ("model.layers", "--layers"), ("model.seq_len", "--seq"), ("training.batch_size", "--batch") })
                message = message.Replace(key, option, StringComparison.Ordinal);
            throw new ArgumentException(message, e);
        }
    }

    static string Shape(BenchConfig c) => string.Create(CultureInfo.InvariantCulture,
        $"d_model {c.DModel}, {c.Layers} blocks, {c.Heads} heads, seq {c.Seq}, batch {c.Batch}, vocab {c.Vocab}, n = {c.Streams}, {c.Threads} threads{(c.Reference ? ", reference path" : "")}{(c.Recompute ? ", recomputation" : "")}");

    static void Print(BenchConfig c, List<BenchResult> results, VocabReference? vocab)
    {
        Console.WriteLine($"{Shape(c)}; {c.Steps} interleaved steps per kind");
        Console.WriteLine($"{"kind",-10} {"median ms",10} {"ratio",7} {"min–max",15} {"tokens/s",10} {"peak MB",9}");
        foreach (var r in results)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Kind,-10} {r.MedianStepMs,10:F1} {r.RatioToResidual,7:F3} {$"{r.RatioMin:F3}–{r.RatioMax:F3}",15} {r.TokensPerS,10:N0} {r.PeakMemoryMb,9:F0}"));
        if (vocab is not null)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"head at vocab {vocab.Vocab}: residual step {vocab.StepMs:F1} ms against {vocab.StepAt256Ms:F1} ms at vocab 256 + {vocab.HeadProductsMs:F1} ms for the head's three products alone: ratio {vocab.Ratio:F3}"));
    }

    static void PrintGeneration(BenchConfig c, int prompt, int tokens, List<GenerationResult> results)
    {
        Console.WriteLine($"{Shape(c)}; greedy generation with the key-value cache, prompt {prompt}, {tokens} new tokens, {c.Steps} interleaved rounds per kind");
        Console.WriteLine($"{"kind",-10} {"ms/token",9} {"tokens/s",9} {"ratio",7} {"ms/token in window",19} {"ratio",7}");
        foreach (var r in results)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Kind,-10} {r.MsPerToken,9:F2} {r.TokensPerS,9:F1} {r.RatioToResidual,7:F3} {r.MsPerTokenInWindow,19:F2} {r.RatioInWindow,7:F3}"));
        Console.WriteLine($"in window: tokens generated while the context still fits seq_len ({c.Seq}), each running every sub-layer on itself alone.");
    }
}
