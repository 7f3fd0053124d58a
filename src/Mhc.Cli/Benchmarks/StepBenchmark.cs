using System.Diagnostics;
using Mhc.Connections;
using Mhc.Diagnostics;
using Mhc.Models;
using Mhc.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Cli.Benchmarks;

/// <summary>One kind's figures.</summary>
/// <param name="Kind">plain, residual, hc-static, hc or mhc.</param>
/// <param name="MedianStepMs">Median step time (forward, backward, AdamW update).</param>
/// <param name="RatioToResidual">Median over rounds of this kind's step time divided by residual's in the same round.</param>
/// <param name="RatioMin">Smallest per-round ratio.</param>
/// <param name="RatioMax">Largest per-round ratio.</param>
/// <param name="TokensPerS">Tokens per second at the median step time.</param>
/// <param name="PeakMemoryMb">Parameters, gradients and AdamW moments plus the step's peak of transient memory (activations).</param>
sealed record BenchResult(string Kind, double MedianStepMs, double RatioToResidual, double RatioMin, double RatioMax, double TokensPerS, double PeakMemoryMb);

/// <summary>
/// Times training steps of the same GPT with different connection kinds side by side in one process:
/// warm-up, then rounds in which every kind runs one step (order rotated each round), so drift of the
/// machine affects all kinds alike; ratios are taken within a round.
/// </summary>
static class StepBenchmark
{
    /// <summary>Runs the benchmark for <paramref name="kinds"/> (residual must be among them).</summary>
    /// <param name="config">Shape and repetitions.</param>
    /// <param name="kinds">Kinds by name: plain, residual, hc-static, hc, mhc.</param>
    /// <param name="progress">Receives a line per phase.</param>
    public static List<BenchResult> Run(BenchConfig config, IReadOnlyList<string> kinds, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(kinds);
        if (!kinds.Contains("residual")) throw new ArgumentException("the benchmark needs the residual kind as its reference.", nameof(kinds));
        set_num_threads(config.Threads);
        var device = Devices.Resolve(config.Device);
        manual_seed(0);
        using var ids = randint(0, config.Vocab, [config.Batch, config.Seq]).to(device);
        using var targets = randint(0, config.Vocab, [config.Batch, config.Seq]).to(device);
        var runners = kinds.Select(k => new Runner(k, config, device)).ToList();
        try
        {
            progress?.Invoke($"warm-up: {config.Warmup} steps per kind");
            foreach (var r in runners)
                for (var i = 0; i < config.Warmup; i++) r.Step(ids, targets);
            var times = runners.ToDictionary(r => r.Kind, _ => new List<double>());
            for (var round = 0; round < config.Steps; round++)
            {
                progress?.Invoke($"round {round + 1}/{config.Steps}");
                for (var k = 0; k < runners.Count; k++)
                {
                    var r = runners[(k + round) % runners.Count];
                    times[r.Kind].Add(r.Step(ids, targets));
                }
            }
            progress?.Invoke("peak memory: one step per kind");
            var memory = runners.ToDictionary(r => r.Kind, r => r.PeakMemoryMb(ids, targets));
            var residual = times["residual"];
            return runners.Select(r =>
            {
                var ratios = times[r.Kind].Zip(residual, (a, b) => a / b).ToList();
                var median = Median(times[r.Kind]);
                return new BenchResult(r.Kind, median, Median(ratios), ratios.Min(), ratios.Max(),
                    config.Batch * config.Seq / (median / 1000), memory[r.Kind]);
            }).ToList();
        }
        finally
        {
            foreach (var r in runners) r.Dispose();
        }
    }

    static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    sealed class Runner : IDisposable
    {
        readonly nn.Module<Tensor, Tensor> model;
        readonly optim.Optimizer optimizer;

        public Runner(string kind, BenchConfig config, Device device)
        {
            Kind = kind;
            var connection = kind is "plain" or "residual"
                ? ConnectionOptions.Residual
                : new ConnectionOptions { Kind = ConnectionKindNames.Parse(kind), Streams = config.Streams };
            var gpt = new GptConfig
            {
                VocabSize = config.Vocab, DModel = config.DModel, Layers = config.Layers, Heads = config.Heads, SeqLen = config.Seq,
                Connection = connection with { Fused = !config.Reference, Recompute = config.Recompute && kind is not ("plain" or "residual") },
            };
            manual_seed(1);
            model = kind == "plain" ? new PlainGpt(gpt) : new Gpt(gpt);
            model.to(device);
            optimizer = optim.AdamW(model.parameters(), 1e-4, 0.9, 0.95, weight_decay: 0.1);
        }

        public string Kind { get; }

        public double Step(Tensor ids, Tensor targets)
        {
            var clock = Stopwatch.StartNew();
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                using var logits = model.call(ids);
                nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten()).backward();
                optimizer.step();
            }
            return clock.Elapsed.TotalMilliseconds;
        }

        public double PeakMemoryMb(Tensor ids, Tensor targets)
        {
            ProcessMemory.ResetPeak();
            var baseline = ProcessMemory.Resident();
            Step(ids, targets);
            var transient = Math.Max(0, ProcessMemory.Peak() - baseline);
            // Parameters, gradients and the two AdamW moments, all float32.
            var persistent = model.parameters().Sum(p => p.numel()) * 4L * 4;
            return (persistent + transient) / (1024.0 * 1024);
        }

        public void Dispose()
        {
            optimizer.Dispose();
            model.Dispose();
        }
    }
}
