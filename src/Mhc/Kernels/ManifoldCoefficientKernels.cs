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
/// </summary>
static class ManifoldCoefficientKernels
{
    const long Chunk = 64;

    /// <summary>
    /// (pre [..., n], post [..., n], res [..., n, n]) from projected [..., n² + 2n] and the parameters
    /// (α_pre, α_post, α_res as 0-dim tensors, b_pre [n], b_post [n], b_res [n, n]).
    /// </summary>
    public static (Tensor Pre, Tensor Post, Tensor Res) Forward(Tensor projected, IReadOnlyList<Tensor> parameters, int iterations)
    {
        var n = (int)parameters[3].size(0);
        var leading = projected.shape[..^1];
        var pre = empty([.. leading, n], projected.dtype);
        var post = empty([.. leading, n], projected.dtype);
        var res = empty([.. leading, n, n], projected.dtype);
        Tensor[] inputs = [projected, .. parameters];
        if (pre.dtype == ScalarType.Float32) Forward<float>(inputs, pre, post, res, n, iterations);
        else Forward<double>(inputs, pre, post, res, n, iterations);
        return (pre, post, res);
    }

    /// <summary>
    /// Gradients of the projection and of the six parameters (in <see cref="Forward"/>'s order) from the
    /// gradients of pre, post and res; <paramref name="pre"/> and <paramref name="post"/> are the forward outputs.
    /// </summary>
    public static (Tensor Projected, Tensor[] Parameters) Backward(Tensor projected, IReadOnlyList<Tensor> parameters, Tensor pre, Tensor post,
        Tensor gPre, Tensor gPost, Tensor gRes, int iterations)
    {
        var n = (int)parameters[3].size(0);
        List<Tensor> saved = [projected, .. parameters, pre, post];
        var grads = projected.dtype == ScalarType.Float32
            ? Backward<float>(saved, gPre, gPost, gRes, n, iterations)
            : Backward<double>(saved, gPre, gPost, gRes, n, iterations);
        return (grads[0], grads[1..].ToArray());
    }

    static void Forward<T>(Tensor[] inputs, Tensor pre, Tensor post, Tensor res, int n, int iterations) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var width = n * n + 2 * n;
        var (aPre, aPost, aRes) = (Scalar<T>(inputs[1]), Scalar<T>(inputs[2]), Scalar<T>(inputs[3]));
        var two = T.One + T.One;
        CpuTensor.ParallelChunks(pre.numel() / n, Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> p = CpuTensor.Span<T>(inputs[0]), bPre = CpuTensor.Span<T>(inputs[4]), bPost = CpuTensor.Span<T>(inputs[5]), bRes = CpuTensor.Span<T>(inputs[6]);
            Span<T> outPre = CpuTensor.Span<T>(pre), outPost = CpuTensor.Span<T>(post), outRes = CpuTensor.Span<T>(res);
            var count = (int)(t1 - t0);
            // Scratch from the shared pools: a step would otherwise allocate megabytes of garbage.
            var logits = ArrayPool<T>.Shared.Rent(count * n * n);
            var scratch = ArrayPool<Vector<T>>.Shared.Rent(SinkhornKernel.ScratchSize(n, iterations));
            for (var t = (int)t0; t < t1; t++)
            {
                var pt = p.Slice(t * width, width);
                for (var i = 0; i < n; i++)
                {
                    outPre[t * n + i] = Sigmoid(aPre * pt[i] + bPre[i]);
                    outPost[t * n + i] = two * Sigmoid(aPost * pt[n + i] + bPost[i]);
                }
                for (var k = 0; k < n * n; k++) logits[(t - (int)t0) * n * n + k] = aRes * pt[2 * n + k] + bRes[k];
            }
            SinkhornKernel.Forward<T>(logits, outRes.Slice((int)t0 * n * n, count * n * n), count, n, iterations, scratch);
            ArrayPool<T>.Shared.Return(logits);
            ArrayPool<Vector<T>>.Shared.Return(scratch);
        });
    }

    static List<Tensor> Backward<T>(List<Tensor> saved, Tensor gPre, Tensor gPost, Tensor gRes, int n, int iterations) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (projected, pre, post) = (saved[0], saved[7], saved[8]);
        var width = n * n + 2 * n;
        var tokens = pre.numel() / n;
        var (aPre, aPost, aRes) = (Scalar<T>(saved[1]), Scalar<T>(saved[2]), Scalar<T>(saved[3]));
        var gProjected = empty_like(projected);
        // Per-chunk partial sums of the parameter gradients, added in chunk order: reproducible for any thread count.
        var partialWidth = 3 + 2 * n + n * n;
        var chunks = (tokens + Chunk - 1) / Chunk;
        var partials = new T[chunks * partialWidth];
        var half = T.One / (T.One + T.One);
        CpuTensor.ParallelChunks(tokens, Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> p = CpuTensor.Span<T>(projected), bRes = CpuTensor.Span<T>(saved[6]), sPre = CpuTensor.Span<T>(pre), sPost = CpuTensor.Span<T>(post);
            ReadOnlySpan<T> gp = CpuTensor.Span<T>(gPre), gq = CpuTensor.Span<T>(gPost), gr = CpuTensor.Span<T>(gRes);
            var gx = CpuTensor.Span<T>(gProjected);
            var partial = partials.AsSpan((int)(t0 / Chunk) * partialWidth, partialWidth);
            var count = (int)(t1 - t0);
            var logits = ArrayPool<T>.Shared.Rent(count * n * n);
            var gLogits = ArrayPool<T>.Shared.Rent(count * n * n);
            var scratch = ArrayPool<Vector<T>>.Shared.Rent(SinkhornKernel.ScratchSize(n, iterations));
            for (var t = (int)t0; t < t1; t++)
            {
                var pt = p.Slice(t * width, width);
                var gt = gx.Slice(t * width, width);
                for (var i = 0; i < n; i++)
                {
                    var s = sPre[t * n + i];
                    var z = gp[t * n + i] * s * (T.One - s);                        // d sigmoid = s(1 − s)
                    gt[i] = z * aPre;
                    partial[0] += z * pt[i];
                    partial[3 + i] += z;
                    var q = sPost[t * n + i];
                    var w = gq[t * n + i] * q * (T.One - q * half);                  // d 2·sigmoid = q(1 − q/2)
                    gt[n + i] = w * aPost;
                    partial[1] += w * pt[n + i];
                    partial[3 + n + i] += w;
                }
                for (var k = 0; k < n * n; k++) logits[(t - (int)t0) * n * n + k] = aRes * pt[2 * n + k] + bRes[k];
            }
            SinkhornKernel.Backward<T>(logits, gr.Slice((int)t0 * n * n, count * n * n), gLogits, count, n, iterations, scratch);
            for (var t = (int)t0; t < t1; t++)
            {
                var pt = p.Slice(t * width, width);
                var gt = gx.Slice(t * width, width);
                for (var k = 0; k < n * n; k++)
                {
                    var gl = gLogits[(t - (int)t0) * n * n + k];
                    gt[2 * n + k] = gl * aRes;
                    partial[2] += gl * pt[2 * n + k];
                    partial[3 + 2 * n + k] += gl;
                }
            }
            ArrayPool<T>.Shared.Return(logits);
            ArrayPool<T>.Shared.Return(gLogits);
            ArrayPool<Vector<T>>.Shared.Return(scratch);
        });
        var total = new T[partialWidth];
        for (var c = 0; c < chunks; c++)
            for (var k = 0; k < partialWidth; k++) total[k] += partials[c * partialWidth + k];
        var dtype = projected.dtype;
        Tensor Make(int offset, long[] shape)
        {
            var values = total[offset..(offset + (int)shape.Aggregate(1L, (a, b) => a * b))].Select(double.CreateTruncating).ToArray();
            return (shape.Length == 0 ? tensor(values[0]) : tensor(values, shape)).to(dtype);
        }
        return [gProjected, Make(0, []), Make(1, []), Make(2, []), Make(3, [n]), Make(3 + n, [n]), Make(3 + 2 * n, [n, n])];
    }

    static T Sigmoid<T>(T z) where T : IFloatingPointIeee754<T> => T.One / (T.One + T.Exp(-z));

    static T Scalar<T>(Tensor t) where T : unmanaged, IFloatingPointIeee754<T> => CpuTensor.Span<T>(t)[0];
}
