using System.Buffers;
using System.Runtime.CompilerServices;
using System.Numerics;
using static TorchSharp.torch;

namespace Mhc.Kernels;

/// <summary>
/// mHC's coefficient non-linearities as one kernel (mHC paper §4.3, fused kernels): from the
/// RMS-normalised projection <c>p = [p_pre | p_post | p_res]</c> of each token,
/// <c>H_pre = sigmoid(α_pre p_pre + b_pre)</c>, <c>H_post = 2 sigmoid(α_post p_post + b_post)</c>,
/// <c>H_res = Sinkhorn(α_res mat(p_res) + b_res)</c>. The backward recomputes the Sinkhorn iterations per
/// token instead of keeping 40 intermediate tensors alive. CPU, float32/float64, contiguous inputs.
/// The block functions work on a run of tokens; <see cref="ManifoldConnectionKernels"/> calls them while
/// those tokens' state is in cache.
/// </summary>
static class ManifoldCoefficientKernels
{
    /// <summary>Width of the per-token projection: n² + 2n.</summary>
    public static int Width(int n) => n * n + 2 * n;

    /// <summary>Values in a partial sum of the six parameter gradients (α_pre, α_post, α_res, b_pre, b_post, b_res).</summary>
    public static int GateGradientWidth(int n) => 3 + 2 * n + n * n;

    /// <summary>
    /// The six parameter gradients from per-block partial sums, added in block order (reproducible for any
    /// thread count), as tensors of the parameters' shapes.
    /// </summary>
    public static ManifoldParameters GateGradients<T>(ReadOnlySpan<T> partials, int blocks, int n, Tensor gPhi) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var width = GateGradientWidth(n);
        var total = new T[width];
        for (var c = 0; c < blocks; c++)
            for (var k = 0; k < width; k++) total[k] += partials[c * width + k];
        // Straight from the sums into tensors: building them through double arrays and a dtype conversion cost
        // about 0.2 ms per sub-layer, 1.6 ms of an s-preset step.
        return new ManifoldParameters(gPhi, CpuTensor.From<T>(total.AsSpan(0, 1)), CpuTensor.From<T>(total.AsSpan(1, 1)), CpuTensor.From<T>(total.AsSpan(2, 1)),
            CpuTensor.From<T>(total.AsSpan(3, n), n), CpuTensor.From<T>(total.AsSpan(3 + n, n), n), CpuTensor.From<T>(total.AsSpan(3 + 2 * n, n * n), n, n));
    }

    /// <summary>Coefficients of <paramref name="count"/> tokens from their projections (<c>count × (n² + 2n)</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ForwardBlock<T>(in Gates<T> gates, ReadOnlySpan<T> projected, Span<T> pre, Span<T> post, Span<T> res, int count, int n, int iterations)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var width = Width(n);
        var two = T.One + T.One;
        // Scratch from the shared pools: a step would otherwise allocate megabytes of garbage.
        var logits = ArrayPool<T>.Shared.Rent(count * n * n);
        for (var t = 0; t < count; t++)
        {
            var pt = projected.Slice(t * width, width);
            for (var i = 0; i < n; i++)
            {
                pre[t * n + i] = Sigmoid(gates.APre * pt[i] + gates.BPre[i]);
                post[t * n + i] = two * Sigmoid(gates.APost * pt[n + i] + gates.BPost[i]);
            }
            for (var k = 0; k < n * n; k++) logits[t * n * n + k] = gates.ARes * pt[2 * n + k] + gates.BRes[k];
        }
        SinkhornKernel.Forward<T>(logits, res[..(count * n * n)], count, n, iterations);
        ArrayPool<T>.Shared.Return(logits);
    }

    /// <summary>
    /// For <paramref name="count"/> tokens: writes the projection gradient and adds the parameter gradients
    /// into <paramref name="partial"/> (<see cref="GateGradientWidth"/> values).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardBlock<T>(in Gates<T> gates, ReadOnlySpan<T> projected, ReadOnlySpan<T> pre, ReadOnlySpan<T> post,
        ReadOnlySpan<T> gPre, ReadOnlySpan<T> gPost, ReadOnlySpan<T> gRes, Span<T> gProjected, Span<T> partial, int count, int n, int iterations)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var width = Width(n);
        var half = T.One / (T.One + T.One);
        var logits = ArrayPool<T>.Shared.Rent(count * n * n);
        var gLogits = ArrayPool<T>.Shared.Rent(count * n * n);
        for (var t = 0; t < count; t++)
        {
            var pt = projected.Slice(t * width, width);
            var gt = gProjected.Slice(t * width, width);
            for (var i = 0; i < n; i++)
            {
                var s = pre[t * n + i];
                var z = gPre[t * n + i] * s * (T.One - s);                          // d sigmoid = s(1 − s)
                gt[i] = z * gates.APre;
                partial[0] += z * pt[i];
                partial[3 + i] += z;
                var q = post[t * n + i];
                var w = gPost[t * n + i] * q * (T.One - q * half);                  // d 2·sigmoid = q(1 − q/2)
                gt[n + i] = w * gates.APost;
                partial[1] += w * pt[n + i];
                partial[3 + n + i] += w;
            }
            for (var k = 0; k < n * n; k++) logits[t * n * n + k] = gates.ARes * pt[2 * n + k] + gates.BRes[k];
        }
        SinkhornKernel.Backward<T>(logits, gRes[..(count * n * n)], gLogits, count, n, iterations);
        for (var t = 0; t < count; t++)
        {
            var pt = projected.Slice(t * width, width);
            var gt = gProjected.Slice(t * width, width);
            for (var k = 0; k < n * n; k++)
            {
                var gl = gLogits[t * n * n + k];
                gt[2 * n + k] = gl * gates.ARes;
                partial[2] += gl * pt[2 * n + k];
                partial[3 + 2 * n + k] += gl;
            }
        }
        ArrayPool<T>.Shared.Return(logits);
        ArrayPool<T>.Shared.Return(gLogits);
    }

    static T Sigmoid<T>(T z) where T : IFloatingPointIeee754<T> => T.One / (T.One + T.Exp(-z));
}

/// <summary>mHC's gate parameters read from their tensors: α_pre, α_post, α_res, b_pre [n], b_post [n], b_res [n, n].</summary>
ref struct Gates<T> where T : unmanaged
{
    public T APre, APost, ARes;
    public ReadOnlySpan<T> BPre, BPost, BRes;

    /// <summary>Views of the six gate parameters (contiguous CPU tensors of type T).</summary>
    public static Gates<T> Of(ManifoldParameters p) => new()
    {
        APre = CpuTensor.Span<T>(p.AlphaPre)[0],
        APost = CpuTensor.Span<T>(p.AlphaPost)[0],
        ARes = CpuTensor.Span<T>(p.AlphaRes)[0],
        BPre = CpuTensor.Span<T>(p.BiasPre),
        BPost = CpuTensor.Span<T>(p.BiasPost),
        BRes = CpuTensor.Span<T>(p.BiasRes),
    };
}
