using System.Text.Json;
using Mhc.Connections;
using Mhc.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Diagnostics;

/// <summary>
/// What one sub-layer's connection does to a fixed probe sequence (spec §7). Gains come in both of the
/// paper's possible averaging conventions: <c>…Gain</c> = mean over tokens of the per-token gain,
/// <c>…GainOfMean</c> = gain of the token-mean matrix.
/// </summary>
/// <param name="Index">Sub-layer index k.</param>
/// <param name="ForwardGain">Single-layer forward gain of H_res (max |row sum|), token mean.</param>
/// <param name="BackwardGain">Single-layer backward gain (max |column sum|), token mean.</param>
/// <param name="ForwardGainOfMean">Forward gain of the token-mean H_res.</param>
/// <param name="BackwardGainOfMean">Backward gain of the token-mean H_res.</param>
/// <param name="CompositeForwardGain">Forward gain of H_res(L−1)·…·H_res(k), token mean.</param>
/// <param name="CompositeBackwardGain">Backward gain of the composite, token mean.</param>
/// <param name="CompositeForwardGainOfMean">Forward gain of the token-mean composite.</param>
/// <param name="CompositeBackwardGainOfMean">Backward gain of the token-mean composite.</param>
/// <param name="CompositeMinColumnSum">Smallest column sum of the composite, token mean (attenuation hides under a max).</param>
/// <param name="DoublyStochasticError">Largest |row or column sum − 1| of H_res over tokens.</param>
/// <param name="PreMin">Smallest H_pre entry.</param>
/// <param name="PreMax">Largest H_pre entry.</param>
/// <param name="PostMin">Smallest H_post entry.</param>
/// <param name="PostMax">Largest H_post entry.</param>
/// <param name="Saturation">mHC and its variants: share of Sinkhorn input logits (mHC-lite: permutation logits) more than <see cref="StabilityProbe.SaturationGap"/> below their row's maximum; null otherwise.</param>
/// <param name="StateCosine">Mean over tokens of the cosine similarity of the stream state before and after this sub-layer (HC paper's collapse measure).</param>
/// <param name="StreamDiversity">
/// How different the n streams entering this sub-layer are: mean over tokens of 1 − the mean pairwise cosine similarity of the
/// streams (0 = identical streams, as the replicated embedding entering sub-layer 0; 0 for one stream).
/// </param>
/// <param name="PreMean">Token-mean H_pre <c>[n]</c>.</param>
/// <param name="PostMean">Token-mean H_post <c>[n]</c>.</param>
/// <param name="ResMean">Token-mean H_res <c>[n][n]</c>, row i = output stream i.</param>
/// <param name="ResOffDiagonalMass">Mean over rows of Σ_(j≠i) of the token-mean H_res: how much each stream takes from the others (0 = no mixing).</param>
/// <param name="CompositeMean">Token-mean composite H_res(L−1)·…·H_res(k) <c>[n][n]</c>: how the streams entering this sub-layer reach the output.</param>
/// <param name="SignalGain">
/// Signal-path gain: how this sub-layer's branch output reaches the hidden state the network's head reads, through the skip
/// path only (later branches and every coefficient held fixed), relative to how the network's input (the embedding) reaches it.
/// With P_k that map and E the embedding's, for a random probe v: token mean of |P_k v| / |E v|. 1 for the residual network;
/// the same definition for every kind (docs/connections.md).
/// </param>
/// <param name="SignalIdentityError">
/// Token mean of |P_k v − E v| / |E v|: 0 when the sub-layer's output reaches the head exactly as the input does, the residual
/// network's h_L = h_0 + Σ_k F_k (the identity mapping).
/// </param>
public sealed record SublayerDiagnostics(
    int Index,
    double ForwardGain, double BackwardGain, double ForwardGainOfMean, double BackwardGainOfMean,
    double CompositeForwardGain, double CompositeBackwardGain, double CompositeForwardGainOfMean, double CompositeBackwardGainOfMean,
    double CompositeMinColumnSum, double DoublyStochasticError,
    double PreMin, double PreMax, double PostMin, double PostMax,
    double? Saturation, double StateCosine,
    double StreamDiversity, double[] PreMean, double[] PostMean, double[][] ResMean, double ResOffDiagonalMass, double[][] CompositeMean,
    double SignalGain, double SignalIdentityError);

/// <summary>The diagnostics of every sub-layer of a model on the probe sequence.</summary>
/// <param name="Sublayers">One entry per sub-layer, in order.</param>
public sealed record StabilityProfile(IReadOnlyList<SublayerDiagnostics> Sublayers)
{
    /// <summary>What is logged into <c>metrics.jsonl</c> (key <c>diagnostics</c>): extremes over sub-layers and a short trace per sub-layer.</summary>
    public DiagnosticsSummary Summary()
    {
        var s = Sublayers;
        var saturated = s.Where(d => d.Saturation is not null).ToList();
        return new DiagnosticsSummary
        {
            MaxForwardGain = s.Max(d => d.ForwardGain),
            MaxBackwardGain = s.Max(d => d.BackwardGain),
            MaxCompositeForwardGain = s.Max(d => d.CompositeForwardGain),
            MaxCompositeBackwardGain = s.Max(d => d.CompositeBackwardGain),
            MaxCompositeForwardGainOfMean = s.Max(d => d.CompositeForwardGainOfMean),
            MaxCompositeBackwardGainOfMean = s.Max(d => d.CompositeBackwardGainOfMean),
            MinCompositeColumnSum = s.Min(d => d.CompositeMinColumnSum),
            MaxDsError = s.Max(d => d.DoublyStochasticError),
            PreMin = s.Min(d => d.PreMin),
            PreMax = s.Max(d => d.PreMax),
            PostMin = s.Min(d => d.PostMin),
            PostMax = s.Max(d => d.PostMax),
            MeanStateCosine = s.Average(d => d.StateCosine),
            Saturation = saturated.Count > 0 ? saturated.Average(d => d.Saturation!.Value) : null,
            MeanStreamDiversity = s.Average(d => d.StreamDiversity),
            MeanResOffDiagonalMass = s.Average(d => d.ResOffDiagonalMass),
            MaxSignalGain = s.Max(d => d.SignalGain),
            MinSignalGain = s.Min(d => d.SignalGain),
            MaxSignalIdentityError = s.Max(d => d.SignalIdentityError),
            Sublayers = s.Select(d => new SublayerTrace(d.Index, d.StreamDiversity, d.ResOffDiagonalMass, d.ResMean)).ToList(),
        };
    }

    /// <summary>File name of the latest full profile inside a run directory.</summary>
    public const string FileName = "diagnostics.json";

    // A diverging run (kept going by training.skip_nonfinite) measures NaN gains: written as "NaN", as in metrics.jsonl.
    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Writes the profile atomically to <paramref name="path"/>.</summary>
    /// <param name="path">Target file.</param>
    public void Save(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, Json));

    /// <summary>Reads a profile written by <see cref="Save"/>, or null when the file does not exist.</summary>
    /// <param name="path">A diagnostics.json file.</param>
    public static StabilityProfile? Load(string path) =>
        File.Exists(path) ? JsonSerializer.Deserialize<StabilityProfile>(File.ReadAllText(path), Json) : null;
}

/// <summary>
/// Measures a model's connections on a fixed probe sequence, reading the coefficients each connection
/// reports (<see cref="Connection.Coefficients"/>), never re-deriving them.
/// </summary>
public static class StabilityProbe
{
    /// <summary>A Sinkhorn logit this far below its row's maximum weighs less than e^−8 ≈ 3·10⁻⁴: effectively frozen.</summary>
    public const double SaturationGap = 8.0;

    /// <summary>Seed of the random probe vectors of the signal-path gains.</summary>
    public const int SignalProbeSeed = 20250;

    /// <summary>
    /// Measures <paramref name="connections"/> given the state entering each of them and the final state; the network's state
    /// is collapsed by the sum over streams (residual, HC, mHC).
    /// </summary>
    /// <param name="connections">Sub-layers 0..L−1.</param>
    /// <param name="states">L + 1 stream states <c>[1, T, n, d]</c>: entering sub-layer k, then the output of the last.</param>
    public static StabilityProfile Measure(IReadOnlyList<Connection> connections, IReadOnlyList<Tensor> states) =>
        Measure(connections, states, ends: null);

    /// <summary>As the public overload, with the network's own way of leaving the stream state (RMT's read, MUDDFormer's aggregation).</summary>
    /// <param name="connections">Sub-layers 0..L−1.</param>
    /// <param name="states">L + 1 stream states.</param>
    /// <param name="ends">The model's stream ends; null = the sum over streams.</param>
    internal static StabilityProfile Measure(IReadOnlyList<Connection> connections, IReadOnlyList<Tensor> states, StreamEnds? ends)
    {
        ArgumentNullException.ThrowIfNull(connections);
        ArgumentNullException.ThrowIfNull(states);
        if (connections.Count == 0) throw new ArgumentException("there are no connections to measure (a plain model?).", nameof(connections));
        if (states.Count != connections.Count + 1)
            throw new ArgumentException($"expected {connections.Count + 1} stream states for {connections.Count} sub-layers; got {states.Count}.", nameof(states));
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var mixings = connections.Select((c, k) => c.Coefficients(states[k])).ToList();
        var res = mixings.Select(m => m.Res.to(ScalarType.Float64).flatten(0, 1)).ToList();   // [tokens, n, n]
        var composite = Gain.Composite(res);
        var (signalGain, signalError) = SignalPath(connections, states, ends);
        var result = new List<SublayerDiagnostics>();
        for (var k = 0; k < connections.Count; k++)
        {
            var r = res[k];
            var c = composite[k];
            var meanR = r.mean([0]);
            var meanC = c.mean([0]);
            var rowError = (r.sum(-1) - 1).abs().max().ToDouble();
            var colError = (r.sum(-2) - 1).abs().max().ToDouble();
            double? saturation = null;
            var resLogits = connections[k] switch
            {
                ManifoldHyperConnection manifold => manifold.ResLogits(states[k]),
                ManifoldVariantConnection variant => variant.ResLogits(states[k]),
                _ => null,
            };
            if (resLogits is { } logits)
            {
                var gap = logits.amax([-1], keepdim: true) - logits;
                saturation = (gap > SaturationGap).to(ScalarType.Float64).mean().ToDouble();
            }
            var resMean = Rows(meanR);
            result.Add(new SublayerDiagnostics(
                k,
                Gain.Forward(r).mean().ToDouble(), Gain.Backward(r).mean().ToDouble(),
                Gain.Forward(meanR).ToDouble(), Gain.Backward(meanR).ToDouble(),
                Gain.Forward(c).mean().ToDouble(), Gain.Backward(c).mean().ToDouble(),
                Gain.Forward(meanC).ToDouble(), Gain.Backward(meanC).ToDouble(),
                c.sum(-2).amin([-1]).mean().ToDouble(),
                Math.Max(rowError, colError),
                mixings[k].Pre.min().ToDouble(), mixings[k].Pre.max().ToDouble(),
                mixings[k].Post.min().ToDouble(), mixings[k].Post.max().ToDouble(),
                saturation,
                Cosine(states[k], states[k + 1]),
                StreamDiversity(states[k]),
                TokenMean(mixings[k].Pre), TokenMean(mixings[k].Post),
                resMean,
                resMean.Select((row, i) => row.Where((_, j) => j != i).Sum()).Average(),
                Rows(meanC),
                signalGain[k], signalError[k]));
        }
        return new StabilityProfile(result);
    }

    /// <summary>
    /// Every sub-layer's signal-path gain and identity error (<see cref="SublayerDiagnostics.SignalGain"/>): a probe v_k is
    /// injected as sub-layer k's branch output (<see cref="Connection.InjectLinear"/>), carried through the later sub-layers'
    /// skip paths (<see cref="Connection.CarryLinear"/>) and collapsed as the network does: P_k v_k. The same probe entered as
    /// the network's input and carried through every sub-layer gives E v_k. All probes travel together.
    /// </summary>
    static (double[] Gain, double[] IdentityError) SignalPath(IReadOnlyList<Connection> connections, IReadOnlyList<Tensor> states, StreamEnds? ends)
    {
        using var scope = NewDisposeScope();
        Tensor Collapse(Tensor x, Tensor delta) => ends?.CollapseLinear(x, delta) ?? Streams.Collapse(delta);
        var final = states[^1];
        var width = Collapse(final, final).size(-1);
        var generator = new Generator(SignalProbeSeed, final.device);
        var probes = randn([connections.Count, final.size(1), width], ScalarType.Float64, final.device, generator: generator);
        var embedded = ends?.Expand(probes) ?? Streams.Expand(probes, (int)states[0].size(2));
        Tensor? pending = null;   // perturbations injected so far, one batch row per sub-layer
        for (var k = 0; k < connections.Count; k++)
        {
            embedded = connections[k].CarryLinear(states[k], embedded);
            var carried = pending is null ? null : connections[k].CarryLinear(states[k], pending);
            var injected = connections[k].InjectLinear(states[k], probes.narrow(0, k, 1));
            pending = carried is null ? injected : cat([carried, injected], 0);
        }
        var output = Collapse(final, pending!);                                       // P_k v_k: [L, T, d]
        var reference = Collapse(final, embedded);                                    // E v_k
        static Tensor Length(Tensor v) => v.square().sum(-1).sqrt();
        var norm = Length(reference);
        var gain = (Length(output) / norm).mean([1]);
        var error = (Length(output - reference) / norm).mean([1]);
        return (gain.data<double>().ToArray(), error.data<double>().ToArray());
    }

    /// <summary>
    /// Mean over tokens of 1 − the mean pairwise cosine similarity of the n streams of <paramref name="x"/> <c>[B, T, n, d]</c>;
    /// 0 for one stream.
    /// </summary>
    /// <param name="x">A stream state.</param>
    public static double StreamDiversity(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var n = (int)x.size(-2);
        if (n < 2) return 0;
        using var scope = NewDisposeScope();
        var unit = nn.functional.normalize(x.to(ScalarType.Float64).flatten(0, 1), p: 2, dim: -1);   // [tokens, n, d]
        var cosines = unit.matmul(unit.transpose(-1, -2));                                           // [tokens, n, n]
        // Off-diagonal entries of each token's Gram matrix: the diagonal is n ones.
        var meanPairwise = (cosines.sum([-1, -2]) - n) / (n * (n - 1));
        return (1 - meanPairwise).mean().ToDouble();
    }

    static double[] TokenMean(Tensor coefficients) =>
        coefficients.to(ScalarType.Float64).flatten(0, -2).mean([0]).data<double>().ToArray();

    static double[][] Rows(Tensor matrix)
    {
        var n = (int)matrix.size(0);
        var values = matrix.contiguous().data<double>().ToArray();
        return Enumerable.Range(0, n).Select(i => values[(i * n)..((i + 1) * n)]).ToArray();
    }

    /// <summary>Mean over tokens of cos(vec(a_t), vec(b_t)), where vec flattens the streams.</summary>
    static double Cosine(Tensor a, Tensor b)
    {
        var fa = a.to(ScalarType.Float64).flatten(2);
        var fb = b.to(ScalarType.Float64).flatten(2);
        return nn.functional.cosine_similarity(fa, fb, dim: -1).mean().ToDouble();
    }
}
