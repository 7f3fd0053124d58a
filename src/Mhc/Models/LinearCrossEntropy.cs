using Mhc.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Models;

/// <summary>
/// The output head and the cross-entropy in one: <c>mean_i (logsumexp(h_i·Wᵀ) − h_i·W[y_i])</c> without ever holding the
/// whole <c>[tokens, vocab]</c> logits. Rows go through in chunks of tens of megabytes, each chunk's logits written into
/// one reused buffer, turned into probabilities in place (on the CPU by <see cref="CrossEntropyKernel"/>, a row at a time
/// while it is in cache), and its gradients (<c>∂h = (p − onehot)·W</c>,
/// <c>∂W += (p − onehot)ᵀ·h</c>) taken at once while it is there. At a vocabulary of 50,257 the plain path allocates and
/// touches several 400 MB tensors per step (logits, their softmax, their gradient); this path touches one buffer.
/// Same math as <c>cross_entropy(h·Wᵀ, y)</c>; only the order of sums differs.
/// </summary>
static class LinearCrossEntropy
{
    /// <summary>
    /// Elements of one chunk's logits buffer: 8 M (32 MB of float32, glibc's largest size still served from the heap;
    /// float64 buffers are twice that), or at least one row. Fewer rows per chunk make the three products read the weight
    /// more often: at a vocabulary of 50,257, 41 rows a chunk took twice as long as 166.
    /// </summary>
    const long ChunkElements = 8L << 20;

    /// <summary>Mean cross-entropy of <paramref name="hidden"/> <c>[N, d]</c> through <paramref name="weight"/> <c>[V, d]</c> against <paramref name="targets"/> <c>[N]</c>.</summary>
    public static Tensor Mean(Tensor hidden, Tensor weight, Tensor targets) =>
        Mean(hidden, weight, targets, CpuTensor.Supports(hidden, weight) && targets.dtype == ScalarType.Int64 && targets.device_type == DeviceType.CPU);

    /// <summary><see cref="Mean(Tensor, Tensor, Tensor)"/>; <paramref name="kernel"/> false takes the tensor-operation path even where the kernel could run (tests).</summary>
    internal static Tensor Mean(Tensor hidden, Tensor weight, Tensor targets, bool kernel) =>
        is_grad_enabled() && (hidden.requires_grad || weight.requires_grad)
            ? Function.Run(hidden, weight, CheckTargets(targets, weight.size(0)), kernel)
            : Sum(hidden, weight, CheckTargets(targets, weight.size(0)), kernel, gradients: null).div_(hidden.size(0));

    // Before anything is allocated: a target outside the vocabulary would otherwise surface in the middle of the chunks.
    static Tensor CheckTargets(Tensor targets, long vocab)
    {
        if (targets.numel() == 0) return targets;
        var (min, max) = (targets.min().item<long>(), targets.max().item<long>());
        if (min < 0 || max >= vocab)
            throw new ArgumentException($"target {(min < 0 ? min : max)} is outside the vocabulary 0..{vocab - 1}.", nameof(targets));
        return targets;
    }

    /// <summary>The summed loss, and with <paramref name="gradients"/> the gradients of the mean written into them.</summary>
    static Tensor Sum(Tensor hidden, Tensor weight, Tensor targets, bool kernel, (Tensor Hidden, Tensor Weight)? gradients)
    {
        using var _ = no_grad();
        var (n, vocab) = (hidden.size(0), weight.size(0));
        var rows = Math.Clamp(ChunkElements / vocab, 1, Math.Max(1, n));
        var total = zeros([], ScalarType.Float64, hidden.device);
        using var buffer = empty([rows, vocab], hidden.dtype, hidden.device);
        using var weightT = weight.t();
        for (long start = 0; start < n; start += rows)
        {
            using var scope = NewDisposeScope();
            var count = Math.Min(rows, n - start);
            var h = hidden.narrow(0, start, count);
            var y = targets.narrow(0, start, count).contiguous();
            var logits = buffer.narrow(0, 0, count);
            logits.addmm_(h, weightT, beta: 0, alpha: 1);                         // h·Wᵀ into the reused buffer
            if (kernel) total.add_(CrossEntropyKernel.Rows(logits, y, gradients is null ? null : 1.0 / n));
            else total.add_(Rows(logits, y.unsqueeze(1), gradients is null ? null : 1.0 / n));
            if (gradients is not { } g) continue;
            g.Hidden.narrow(0, start, count).addmm_(logits, weight, beta: 0, alpha: 1);
            g.Weight.addmm_(logits.t(), h);
        }
        return total.to(hidden.dtype);
    }

    /// <summary><see cref="CrossEntropyKernel.Rows"/> in tensor operations, for devices and types the kernel does not serve.</summary>
    static Tensor Rows(Tensor logits, Tensor targets, double? gradientScale)
    {
        var lse = logits.logsumexp(1, keepdim: true);
        var loss = (lse - logits.gather(1, targets)).sum().to(ScalarType.Float64);
        if (gradientScale is { } scale)
        {
            logits.sub_(lse).exp_();                                              // softmax in place
            logits.scatter_add_(1, targets, full([targets.size(0), 1], -1.0, logits.dtype, logits.device));   // p − onehot
            logits.mul_(scale);
        }
        return loss;
    }

    /// <summary>The autograd node: forward computes the loss and both gradients; backward scales them by the incoming gradient.</summary>
    sealed class Function : autograd.SingleTensorFunction<Function>
    {
        public override string Name => "MhcLinearCrossEntropy";

        public static Tensor Run(Tensor hidden, Tensor weight, Tensor targets, bool kernel) => apply(hidden, weight, targets, kernel);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (hidden, weight, targets, kernel) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (bool)vars[3]);
            // Kept out of the caller's dispose scope until backward, which frees them (the loss may leave that scope first).
            var gradients = new Gradients(zeros_like(hidden).DetachFromDisposeScope(), zeros_like(weight).DetachFromDisposeScope());
            using var detachedHidden = hidden.detach();
            using var detachedWeight = weight.detach();
            var loss = Sum(detachedHidden, detachedWeight, targets, kernel, (gradients.Hidden, gradients.Weight)).div_(hidden.size(0));
            ctx.save_data("gradients", gradients);
            return loss;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            using var gradients = (Gradients)ctx.get_data("gradients");
            return [gradients.Hidden.mul(grad), gradients.Weight.mul(grad), null!, null!];
        }

        sealed record Gradients(Tensor Hidden, Tensor Weight) : IDisposable
        {
            public void Dispose()
            {
                Hidden.Dispose();
                Weight.Dispose();
            }
        }
    }
}
