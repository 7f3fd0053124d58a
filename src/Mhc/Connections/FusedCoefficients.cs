using Mhc.Kernels;
using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// One connection's coefficients on one stream state for the fused path: the values (detached,
/// contiguous, the state's dtype) and how to send their gradients back to the state and the parameters.
/// </summary>
abstract class FusedCoefficients : IDisposable
{
    Tensor? branchInput;

    /// <param name="pre">H_pre.</param>
    /// <param name="post">H_post.</param>
    /// <param name="res">H_res.</param>
    /// <param name="branchInput">Σ_j pre_j x_j when the coefficient pass computed it on the way, else null.</param>
    protected FusedCoefficients(Tensor pre, Tensor post, Tensor res, Tensor? branchInput = null)
    {
        Pre = pre;
        Post = post;
        Res = res;
        this.branchInput = branchInput;
    }

    /// <summary>H_pre <c>[..., n]</c>.</summary>
    public Tensor Pre { get; }

    /// <summary>H_post <c>[..., n]</c>.</summary>
    public Tensor Post { get; }

    /// <summary>H_res <c>[..., n, n]</c>.</summary>
    public Tensor Res { get; }

    /// <summary>The branch input <c>Σ_j pre_j x_j</c> of state <paramref name="x"/>; the caller owns it.</summary>
    public Tensor TakeBranchInput(Tensor x)
    {
        var u = branchInput ?? StreamMixing.Read(x, Pre);
        branchInput = null;
        return u;
    }

    /// <summary>
    /// The gradient of the state <paramref name="x"/> and of the connection parameters whose gradients the fused path
    /// computes (each paired with its parameter; the others get theirs through autograd), from the gradient
    /// <paramref name="g"/> of the connection's output state, <paramref name="gu"/> of the branch input and
    /// <paramref name="gPost"/> of H_post (H_res's is computed here, while the state is read). The state gradient is
    /// a new tensor, or with <paramref name="overwriteG"/> (g is the caller's and no longer needed) a new
    /// handle to g's memory written over. <paramref name="previous"/>, if given, is the preceding connection's
    /// write backward, which takes this state gradient: it runs on each range of tokens as soon as their
    /// gradient is final.
    /// </summary>
    public abstract (Tensor Gx, IReadOnlyList<(Tensor Parameter, Tensor Gradient)> Parameters) Backward(Tensor x, Tensor g, Tensor gu, Tensor gPost, bool overwriteG,
        StreamMixing.WriteBackwardPass? previous = null);

    /// <summary>Takes every tensor out of the current dispose scope, to live until backward.</summary>
    public FusedCoefficients Keep()
    {
        foreach (var t in Owned()) t.DetachFromDisposeScope();
        return this;
    }

    /// <summary>The tensors this object keeps alive.</summary>
    protected virtual IEnumerable<Tensor> Owned() => branchInput is null ? [Pre, Post, Res] : [Pre, Post, Res, branchInput];

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in Owned()) t.Dispose();
        GC.SuppressFinalize(this);
    }
}
