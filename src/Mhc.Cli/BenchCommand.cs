using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Mhc.Cli.Benchmarks;
using Mhc.Diagnostics;

namespace Mhc.Cli;

/// <summary><c>mhc bench</c>: training-step time and memory of plain, residual, HC and mHC side by side.</summary>
static class BenchCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = "r1 (d 512, 8 blocks, 8 heads, seq 256, batch 8) or r2 (d 1024, 16 heads, batch 4).", DefaultValueFactory = _ => "r1" };
        var dModel = new Option<int?>("--d-model") { Description = "Model width." };
        var layers = new Option<int?>("--layers") { Description = "Transformer blocks." };
        var heads = new Option<int?>("--heads") { Description = "Attention heads." };
        var seq = new Option<int?>("--seq") { Description = "Sequence length." };
        var batch = new Option<int?>("--batch") { Description = "Sequences per step." };
        var streams = new Option<int?>("--streams") { Description = "Streams of hc and mhc (default 4)." };
        var threads = new Option<int?>("--threads") { Description = "CPU threads (default 2)." };
        var steps = new Option<int?>("--steps") { Description = "Timed steps per kind (default 10)." };
        var kinds = new Option<string>("--kinds") { Description = "Comma-separated kinds among plain, residual, hc-static, hc, mhc.", DefaultValueFactory = _ => "plain,residual,hc,mhc" };
        var reference = new Option<bool>("--reference") { Description = "Time the reference (unfused) connection path." };
        var recompute = new Option<bool>("--recompute") { Description = "Time hc and mhc with recomputation (memory for time)." };
        var json = new Option<bool>("--json") { Description = "Print only JSON on stdout (progress goes to stderr)." };
        var device = new Option<string>("--device") { Description = "cpu (default), cuda or cuda:N.", DefaultValueFactory = _ => "cpu" };
        var command = new Command("bench", "Time training steps of plain, residual, HC and mHC models side by side (interleaved, one process).")
        {
            preset, dModel, layers, heads, seq, batch, streams, threads, steps, kinds, reference, recompute, json, device,
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
            };
            if (config.Reference && config.Recompute) throw new ArgumentException("--recompute applies to the fused path; drop --reference.");
            Validate(config);
            var kindList = parse.GetValue(kinds)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            foreach (var k in kindList)
                if (k is not ("plain" or "residual" or "hc-static" or "hc" or "mhc"))
                    throw new ArgumentException($"--kinds: '{k}' is unknown: allowed plain, residual, hc-static, hc, mhc.");
            var asJson = parse.GetValue(json);
            var results = StepBenchmark.Run(config, kindList, line => Console.Error.WriteLine(line));
            if (asJson)
                Console.WriteLine(JsonSerializer.Serialize(new { config, results }, Json));
            else
                Print(config, results);
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
        Require(c.DModel >= 2, "--d-model", c.DModel, ">= 2");
        Require(c.Layers >= 1, "--layers", c.Layers, ">= 1");
        Require(c.Heads >= 1 && c.DModel % c.Heads == 0 && c.DModel / c.Heads % 2 == 0, "--heads", c.Heads, $"a divisor of d_model = {c.DModel} giving an even head width");
        Require(c.Seq >= 1, "--seq", c.Seq, ">= 1");
        Require(c.Batch >= 1, "--batch", c.Batch, ">= 1");
        Require(c.Streams >= 2, "--streams", c.Streams, ">= 2");
        Require(c.Threads >= 1, "--threads", c.Threads, ">= 1");
        Require(c.Steps >= 1, "--steps", c.Steps, ">= 1");
    }

    static void Print(BenchConfig c, List<BenchResult> results)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"d_model {c.DModel}, {c.Layers} blocks, {c.Heads} heads, seq {c.Seq}, batch {c.Batch}, n = {c.Streams}, {c.Threads} threads, {c.Steps} interleaved steps per kind{(c.Reference ? ", reference path" : "")}{(c.Recompute ? ", recomputation" : "")}"));
        Console.WriteLine($"{"kind",-10} {"median ms",10} {"ratio",7} {"min–max",15} {"tokens/s",10} {"peak MB",9}");
        foreach (var r in results)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Kind,-10} {r.MedianStepMs,10:F1} {r.RatioToResidual,7:F3} {$"{r.RatioMin:F3}–{r.RatioMax:F3}",15} {r.TokensPerS,10:N0} {r.PeakMemoryMb,9:F0}"));
    }
}
