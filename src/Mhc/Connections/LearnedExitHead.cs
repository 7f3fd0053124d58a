using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// DeepSeek-V4's exit head (<c>hc_head</c>, <see cref="ExitHead.Learned"/>): the last stream state <c>[B, T, n, d]</c> →
/// <c>[B, T, d]</c> as <c>Σ_s w_s x_s</c>, with per-token weights <c>w = σ(α·(v·φ)/rms(v) + b) + ε</c> from the
/// flattened state <c>v = vec(x) ∈ R^(n·d)</c>: mHC's H_pre with its own parameters and DeepSeek's ε. Starts with
/// φ = 0, b = 0 (every weight ½ + ε): the final RMSNorm removes that common scale, so at step 0 the model is the one
/// with the sum.
/// </summary>
sealed class LearnedExitHead : nn.Module<Tensor, Tensor>
{
    /// <summary>ε added to every weight, as DeepSeek's <c>hc_eps</c>.</summary>
    public const double WeightEpsilon = ManifoldHyperConnection.DeepSeekEpsilon;

    readonly Parameter phi;
    readonly Parameter alpha;
    readonly Parameter bias;

    /// <param name="streams">n, at least 2.</param>
    /// <param name="dModel">d.</param>
    /// <param name="gateInit">Initial α (mHC's gate initialisation).</param>
    public LearnedExitHead(int streams, int dModel, double gateInit) : base("exit_head")
    {
        Streams = streams;
        DModel = dModel;
        phi = new Parameter(zeros(streams * dModel, streams));
        alpha = new Parameter(tensor((float)gateInit));
        bias = new Parameter(zeros(streams));
        RegisterComponents();
    }

    /// <summary>Number of streams n.</summary>
    public int Streams { get; }

    /// <summary>Model width d.</summary>
    public int DModel { get; }

    /// <summary>φ <c>[n·d, n]</c> (DeepSeek's <c>hc_head_fn</c> is its transpose).</summary>
    public Parameter Phi => phi;

    /// <summary>α, a scalar (DeepSeek's <c>hc_head_scale</c> <c>[1]</c>).</summary>
    public Parameter Alpha => alpha;

    /// <summary>b <c>[n]</c> (DeepSeek's <c>hc_head_base</c>).</summary>
    public Parameter Bias => bias;

    /// <summary>The per-token stream weights w <c>[B, T, n]</c>, in float32 (float64 for a float64 state).</summary>
    /// <param name="x">Stream state <c>[B, T, n, d]</c>.</param>
    public Tensor Weights(Tensor x)
    {
        Check(x);
        using var scope = NewDisposeScope();
        var v = x.to(x.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32).reshape(x.size(0), x.size(1), Streams * DModel);
        var inverseRms = v.square().mean([-1], keepdim: true).add(ManifoldHyperConnection.RmsEpsilon).rsqrt();
        var weights = (alpha * (v.matmul(phi) * inverseRms) + bias).sigmoid() + WeightEpsilon;
        return weights.MoveToOuterDisposeScope();
    }

    /// <summary><c>Σ_s w_s x_s</c>: <c>[B, T, n, d]</c> → <c>[B, T, d]</c>.</summary>
    /// <param name="x">Stream state.</param>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var w = Weights(x).to(x.dtype);
        return w.unsqueeze(-2).matmul(x).squeeze(-2).MoveToOuterDisposeScope();
    }

    void Check(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4 || x.size(2) != Streams || x.size(3) != DModel)
            throw new ArgumentException($"the exit head expects a stream state [B, T, n = {Streams}, d = {DModel}]; got [{string.Join(", ", x.shape)}].", nameof(x));
    }
}
