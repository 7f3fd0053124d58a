using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// The Pre-Norm residual baseline <c>x + F(x)</c> on a one-stream state <c>[B, T, 1, d]</c>. It owns no
/// parameters besides the branch's and does no stream-dimension work.
/// </summary>
public sealed class ResidualConnection : Connection
{
    /// <summary>Wraps <paramref name="branch"/>; <paramref name="options"/> must have Kind Residual and Streams 1.</summary>
    /// <param name="options">Options with <see cref="ConnectionKind.Residual"/>.</param>
    /// <param name="dModel">Model width d.</param>
    /// <param name="sublayerIndex">Sub-layer index k.</param>
    /// <param name="branch">The wrapped branch F.</param>
    public ResidualConnection(ConnectionOptions options, int dModel, int sublayerIndex, TorchSharp.torch.nn.Module<Tensor, Tensor> branch)
        : base("residual_connection", RequireKind(options), dModel, sublayerIndex, branch)
    {
        RegisterComponents();
    }

    static ConnectionOptions RequireKind(ConnectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Kind != ConnectionKind.Residual)
            throw new ArgumentException($"ResidualConnection needs ConnectionOptions.Kind = Residual; got {options.Kind}.", nameof(options));
        return options;
    }

    /// <inheritdoc/>
    protected override Mixing ComputeCoefficients(Tensor x)
    {
        var type = CoefficientType(x);
        var (b, t) = (x.size(0), x.size(1));
        return new Mixing(
            ones([b, t, 1], type, x.device),
            ones([b, t, 1], type, x.device),
            ones([b, t, 1, 1], type, x.device));
    }

    /// <inheritdoc/>
    internal override bool CanFuse(Tensor x) => false;

    /// <inheritdoc/>
    protected override Tensor Update(Tensor x)
    {
        using var u = x.squeeze(-2);
        using var y = CallBranch(u);
        using var y1 = y.unsqueeze(-2);
        return x + y1;
    }
}
