using static TorchSharp.torch;

namespace Mhc.Kernels;

/// <summary>
/// One connection's coefficients on one stream state for the fused path: the values (detached,
/// contiguous, the state's dtype) and how to send their gradients back to the state and the parameters.
/// </summary>
abstract class FusedCoefficients : IDisposable
{
    protected FusedCoefficients(Tensor pre, Tensor post, Tensor res)
    {
        Pre = pre;
        Post = post;
        Res = res;
    }

    /// <summary>H_pre <c>[..., n]</c>.</summary>
    public Tensor Pre { get; }

    /// <summary>H_post <c>[..., n]</c>.</summary>
    public Tensor Post { get; }

    /// <summary>H_res <c>[..., n, n]</c>.</summary>
    public Tensor Res { get; }

    /// <summary>
    /// Adds the state's share of the gradient to <paramref name="gx"/> (in place) and returns the gradients of
    /// the connection's <see cref="Connections.Connection.FusedParameters"/>, in order (null = none).
    /// </summary>
    public abstract IReadOnlyList<Tensor?> Backward(Tensor x, Tensor gPre, Tensor gPost, Tensor gRes, Tensor gx);

    /// <summary>Takes every tensor out of the current dispose scope, to live until backward.</summary>
    public FusedCoefficients Keep()
    {
        foreach (var t in Owned()) t.DetachFromDisposeScope();
        return this;
    }

    /// <summary>The tensors this object keeps alive.</summary>
    protected virtual IEnumerable<Tensor> Owned() => [Pre, Post, Res];

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in Owned()) t.Dispose();
        GC.SuppressFinalize(this);
    }
}
