using System.Diagnostics;
using Mhc.Models;
using Mhc.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Cli.Benchmarks;

/// <summary>One kind's generation figures.</summary>
/// <param name="Kind">A connection kind's name (ConnectionKindNames).</param>
/// <param name="MsPerToken">Median over rounds of the mean time per new token (the first, the prompt's prefill, excluded).</param>
/// <param name="TokensPerS">New tokens per second at that time.</param>
/// <param name="RatioToResidual">Median over rounds of this kind's time per token divided by residual's in the same round.</param>
/// <param name="MsPerTokenInWindow">The same over the tokens generated while the context still fit seq_len (one token through each sub-layer).</param>
/// <param name="RatioInWindow">The ratio to residual over those tokens.</param>
sealed record GenerationResult(string Kind, double MsPerToken, double TokensPerS, double RatioToResidual, double MsPerTokenInWindow, double RatioInWindow);

/// <summary>
/// Times greedy generation with the key-value cache of the same GPT with different connection kinds, interleaved in one
/// process as <see cref="StepBenchmark"/> does: each round every kind generates the same number of tokens after the same prompt.
/// </summary>
static class GenerationBenchmark
{
    public static List<GenerationResult> Run(BenchConfig config, IReadOnlyList<string> kinds, int prompt, int tokens, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!kinds.Contains("residual")) throw new ArgumentException("the benchmark needs the residual kind as its reference.", nameof(kinds));
        if (kinds.Contains("plain")) throw new ArgumentException("--generate times the connection kinds; plain is a training-step baseline.", nameof(kinds));
        set_num_threads(config.Threads);
        var device = Devices.Resolve(config.Device);
        var random = new Random(0);
        var promptIds = Enumerable.Range(0, prompt).Select(_ => random.Next(config.Vocab)).ToList();
        var models = kinds.Select(kind =>
        {
            manual_seed(1);
            var model = new Gpt(StepBenchmark.GptOf(kind, config));
            model.to(device);
            model.eval();
            return (Kind: kind, Model: model);
        }).ToList();
        try
        {
            // Per round and kind: mean time per new token over all of them, and over those inside the window.
            (double All, double InWindow) Generate(Gpt model)
            {
                using var generator = new Generator(0);
                var stamps = new List<double>();
                var clock = Stopwatch.StartNew();
                model.Generate(promptIds, tokens, 0, 0, generator, onToken: _ => stamps.Add(clock.Elapsed.TotalMilliseconds));
                var intervals = stamps.Zip(stamps.Skip(1), (a, b) => b - a).ToList();   // token i + 1's forward and choice
                var inWindow = intervals.Take(Math.Max(0, Math.Min(intervals.Count, config.Seq - prompt))).ToList();
                return (intervals.DefaultIfEmpty(double.NaN).Average(), inWindow.DefaultIfEmpty(double.NaN).Average());
            }
            progress?.Invoke("warm-up: one generation per kind");
            foreach (var (_, model) in models) Generate(model);
            var times = models.ToDictionary(m => m.Kind, _ => new List<(double All, double InWindow)>());
            for (var round = 0; round < config.Steps; round++)
            {
                progress?.Invoke($"round {round + 1}/{config.Steps}");
                for (var k = 0; k < models.Count; k++)
                {
                    var (kind, model) = models[(k + round) % models.Count];
                    times[kind].Add(Generate(model));
                }
            }
            var residual = times["residual"];
            return models.Select(m =>
            {
                var t = times[m.Kind];
                var all = StepBenchmark.Median(t.Select(x => x.All).ToList());
                return new GenerationResult(m.Kind, all, 1000 / all, StepBenchmark.Median(t.Zip(residual, (a, b) => a.All / b.All).ToList()),
                    StepBenchmark.Median(t.Select(x => x.InWindow).ToList()), StepBenchmark.Median(t.Zip(residual, (a, b) => a.InWindow / b.InWindow).ToList()));
            }).ToList();
        }
        finally
        {
            foreach (var (_, model) in models) model.Dispose();
        }
    }
}
