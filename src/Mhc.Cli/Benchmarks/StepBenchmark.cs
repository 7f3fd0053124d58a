using System.Diagnostics;
using Mhc.Connections;
using Mhc.Diagnostics;
using Mhc.Models;
using Mhc.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Cli.Benchmarks;

/// <summary>One kind's figures.</summary>
/// <param name="Kind">plain or a connection kind's name (ConnectionKindNames).</param>
/// <param name="MedianStepMs">Median step time (forward, backward, AdamW update).</param>
/// <param name="RatioToResidual">Median over rounds of this kind's step time divided by residual's in the same round.</param>
/// <param name="RatioMin">Smallest per-round ratio.</param>
/// <param name="RatioMax">Largest per-round ratio.</param>
/// <param name="TokensPerS">Tokens per second at the median step time.</param>
/// <param name="PeakMemoryMb">Parameters, gradients and AdamW moments plus the step's peak of transient memory (activations).</param>
sealed record BenchResult(string Kind, double MedianStepMs, double RatioToResidual, double RatioMin, double RatioMax, double TokensPerS, double PeakMemoryMb);

/// <summary>
/// At a large vocabulary, what the residual step costs against what it must cost: the same model's step at vocabulary
/// 256 plus the head's three products (<c>h·Wᵀ</c>, <c>G·W</c>, <c>Gᵀ·h</c>) timed alone, interleaved in the same rounds.
/// </summary>
/// <param name="Vocab">The vocabulary benchmarked.</param>
/// <param name="StepMs">Residual's median step at that vocabulary.</param>
/// <param name="StepAt256Ms">The same model's median step at vocabulary 256.</param>
/// <param name="HeadProductsMs">Median time of the three head products alone.</param>
/// <param name="Ratio">StepMs / (StepAt256Ms + HeadProductsMs), median over rounds.</param>
sealed record VocabReference(int Vocab, double StepMs, double StepAt256Ms, double HeadProductsMs, double Ratio);

/// <summary>
/// Times training steps of the same GPT with different connection kinds side by side in one process:
/// warm-up, then rounds in which every kind runs one step (order rotated each round), so drift of the
/// machine affects all kinds alike; ratios are taken within a round.
/// </summary>
static class StepBenchmark
{
    /// <summary>Runs the benchmark for <paramref name="kinds"/> (residual must be among them).</summary>
    /// <param name="config">Shape and repetitions.</param>
    /// <param name="kinds">Kinds by name: plain or a connection kind.</param>
    /// <param name="progress">Receives a line per phase.</param>
    public static (List<BenchResult> Results, VocabReference? Vocab) Run(BenchConfig config, IReadOnlyList<string> kinds, Action<string>? progress = null)
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
        // At another vocabulary than 256, residual at 256 and the head's products alone run in the same rounds.
        var reference = config.Vocab == 256 ? null : new Runner("residual", config with { Vocab = 256 }, device);
        using var head = config.Vocab == 256 ? null : new HeadProducts(config, device);
        using var smallIds = reference is null ? null : ids.remainder(256);
        using var smallTargets = reference is null ? null : targets.remainder(256);
        try
        {
            var jobs = runners.Select(r => (Name: r.Kind, Time: (Func<double>)(() => r.Step(ids, targets)))).ToList();
            if (reference is not null)
            {
                jobs.Add(("residual@256", () => reference.Step(smallIds!, smallTargets!)));
                jobs.Add(("head products", head!.Time));
            }
            progress?.Invoke($"warm-up: {config.Warmup} steps per kind");
            foreach (var job in jobs)
                for (var i = 0; i < config.Warmup; i++) job.Time();
            var times = jobs.ToDictionary(j => j.Name, _ => new List<double>());
            for (var round = 0; round < config.Steps; round++)
            {
                progress?.Invoke($"round {round + 1}/{config.Steps}");
                for (var k = 0; k < jobs.Count; k++)
                {
                    var job = jobs[(k + round) % jobs.Count];
                    times[job.Name].Add(job.Time());
                }
            }
            progress?.Invoke("peak memory: one step per kind");
            var memory = runners.ToDictionary(r => r.Kind, r => r.PeakMemoryMb(ids, targets));
            var residual = times["residual"];
            var results = runners.Select(r =>
            {
                var ratios = times[r.Kind].Zip(residual, (a, b) => a / b).ToList();
                var median = Median(times[r.Kind]);
                return new BenchResult(r.Kind, median, Median(ratios), ratios.Min(), ratios.Max(),
                    config.Batch * config.Seq / (median / 1000), memory[r.Kind]);
            }).ToList();
            var vocab = reference is null ? null : new VocabReference(config.Vocab, Median(residual), Median(times["residual@256"]), Median(times["head products"]),
                Median(residual.Select((t, i) => t / (times["residual@256"][i] + times["head products"][i])).ToList()));
            return (results, vocab);
        }
        finally
        {
            foreach (var r in runners) r.Dispose();
            reference?.Dispose();
        }
    }

    internal static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>The three products of a head at the benchmark's shape, with fresh outputs as a training step makes them.</summary>
    sealed class HeadProducts(BenchConfig config, Device device) : IDisposable
    {
        readonly Tensor h = randn([config.Batch * config.Seq, config.DModel], device: device).DetachFromDisposeScope();
        readonly Tensor w = randn([config.Vocab, config.DModel], device: device).DetachFromDisposeScope();

        public double Time()
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            var logits = h.matmul(w.t());                 // [N, V]
            var dh = logits.matmul(w);                    // [N, d]
            var dw = logits.t().matmul(h);                // [V, d]
            return dh.numel() + dw.numel() > 0 ? clock.Elapsed.TotalMilliseconds : 0;
        }

        public void Dispose()
        {
            h.Dispose();
            w.Dispose();
        }
    }

    sealed class Runner : IDisposable
    {
        readonly nn.Module<Tensor, Tensor> model;
        readonly Func<Tensor, Tensor, Tensor> loss;
        readonly optim.Optimizer optimizer;

        public Runner(string kind, BenchConfig config, Device device)
        {
            Kind = kind;
            var gpt = GptOf(kind, config);
            manual_seed(1);
            if (kind == "plain")
            {
                var plain = new PlainGpt(gpt);
                (model, loss) = (plain, plain.Loss);
            }
            else
            {
                var full = new Gpt(gpt);
                (model, loss) = (full, full.Loss);
            }
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
                loss(ids, targets).backward();
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

    /// <summary>The GPT of a benchmark shape with the connection of <paramref name="kind"/> (plain and residual: one stream).</summary>
    internal static GptConfig GptOf(string kind, BenchConfig config)
    {
        var connection = kind is "plain" or "residual"
            ? ConnectionOptions.Residual
            : new ConnectionOptions { Kind = ConnectionKindNames.Parse(kind), Streams = config.Streams };
        return new GptConfig
        {
            VocabSize = config.Vocab, DModel = config.DModel, Layers = config.Layers, Heads = config.Heads, SeqLen = config.Seq,
            Connection = connection with { Fused = !config.Reference, Recompute = config.Recompute && kind is not ("plain" or "residual") },
        };
    }
}
