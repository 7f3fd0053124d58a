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
/// The block functions work on a run of tokens and are what <see cref="ManifoldConnectionKernels"/> calls
/// while those tokens' state is in cache; the tensor functions run them over a whole projection.
/// </summary>
static class ManifoldCoefficientKernels
{
    const long Chunk = 64;

    /// <summary>Width of the per-token projection: n² + 2n.</summary>
    public static int Width(int n) => n * n + 2 * n;

    /// <summary>Values in a partial sum of the six parameter gradients (α_pre, α_post, α_res, b_pre, b_post, b_res).</summary>
    public static int GateGradientWidth(int n) => 3 + 2 * n + n * n;

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
        if (pre.dtype == ScalarType.Float32) Forward<float>(projected, parameters, pre, post, res, n, iterations);
        else Forward<double>(projected, parameters, pre, post, res, n, iterations);
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
        var gProjected = empty_like(projected);
        var tokens = pre.numel() / n;
        var chunks = (tokens + Chunk - 1) / Chunk;
        Tensor[] gates;
        if (projected.dtype == ScalarType.Float32)
        {
            var partials = new float[chunks * GateGradientWidth(n)];
            Backward<float>(projected, parameters, pre, post, gPre, gPost, gRes, gProjected, partials, n, iterations);
            gates = GateGradients<float>(partials, (int)chunks, n);
        }
        else
        {
            var partials = new double[chunks * GateGradientWidth(n)];
            Backward<double>(projected, parameters, pre, post, gPre, gPost, gRes, gProjected, partials, n, iterations);
            gates = GateGradients<double>(partials, (int)chunks, n);
        }
        return (gProjected, gates);
    }

    /// <summary>
    /// The six parameter gradients from per-chunk partial sums, added in chunk order (reproducible for any
    /// thread count), as tensors of the parameters' shapes.
    /// </summary>
    public static Tensor[] GateGradients<T>(ReadOnlySpan<T> partials, int chunks, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var width = GateGradientWidth(n);
        var total = new T[width];
        for (var c = 0; c < chunks; c++)
            for (var k = 0; k < width; k++) total[k] += partials[c * width + k];
        var dtype = typeof(T) == typeof(float) ? ScalarType.Float32 : ScalarType.Float64;
        Tensor Make(int offset, long[] shape)
        {
            var values = total[offset..(offset + (int)shape.Aggregate(1L, (a, b) => a * b))].Select(double.CreateTruncating).ToArray();
            return (shape.Length == 0 ? tensor(values[0]) : tensor(values, shape)).to(dtype);
        }
        return [Make(0, []), Make(1, []), Make(2, []), Make(3, [n]), Make(3 + n, [n]), Make(3 + 2 * n, [n, n])];
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
        var scratch = ArrayPool<Vector<T>>.Shared.Rent(SinkhornKernel.ScratchSize(n, iterations));
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
        SinkhornKernel.Forward<T>(logits, res[..(count * n * n)], count, n, iterations, scratch);
        ArrayPool<T>.Shared.Return(logits);
        ArrayPool<Vector<T>>.Shared.Return(scratch);
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
        var scratch = ArrayPool<Vector<T>>.Shared.Rent(SinkhornKernel.ScratchSize(n, iterations));
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
        SinkhornKernel.Backward<T>(logits, gRes[..(count * n * n)], gLogits, count, n, iterations, scratch);
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
        ArrayPool<Vector<T>>.Shared.Return(scratch);
    }

    static void Forward<T>(Tensor projected, IReadOnlyList<Tensor> parameters, Tensor pre, Tensor post, Tensor res, int n, int iterations)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var width = Width(n);
        CpuTensor.ParallelChunks(pre.numel() / n, Chunk, (t0, t1) =>
        {
            var (a, b) = ((int)t0, (int)(t1 - t0));
            ForwardBlock(Gates<T>.Of(parameters), CpuTensor.Span<T>(projected).Slice(a * width, b * width),
                CpuTensor.Span<T>(pre).Slice(a * n), CpuTensor.Span<T>(post).Slice(a * n), CpuTensor.Span<T>(res).Slice(a * n * n), b, n, iterations);
        });
    }

    static void Backward<T>(Tensor projected, IReadOnlyList<Tensor> parameters, Tensor pre, Tensor post, Tensor gPre, Tensor gPost, Tensor gRes,
        Tensor gProjected, T[] partials, int n, int iterations) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var width = Width(n);
        CpuTensor.ParallelChunks(pre.numel() / n, Chunk, (t0, t1) =>
        {
            var (a, b) = ((int)t0, (int)(t1 - t0));
            BackwardBlock(Gates<T>.Of(parameters), CpuTensor.Span<T>(projected).Slice(a * width), CpuTensor.Span<T>(pre).Slice(a * n),
                CpuTensor.Span<T>(post).Slice(a * n), CpuTensor.Span<T>(gPre).Slice(a * n), CpuTensor.Span<T>(gPost).Slice(a * n),
                CpuTensor.Span<T>(gRes).Slice(a * n * n), CpuTensor.Span<T>(gProjected).Slice(a * width),
                partials.AsSpan((int)(t0 / Chunk) * GateGradientWidth(n), GateGradientWidth(n)), b, n, iterations);
        });
    }

    static T Sigmoid<T>(T z) where T : IFloatingPointIeee754<T> => T.One / (T.One + T.Exp(-z));
}

/// <summary>mHC's gate parameters read from their tensors: α_pre, α_post, α_res, b_pre [n], b_post [n], b_res [n, n].</summary>
ref struct Gates<T> where T : unmanaged
{
    public T APre, APost, ARes;
    public ReadOnlySpan<T> BPre, BPost, BRes;

    /// <summary>Views of the six parameters (contiguous CPU tensors of type T), in that order.</summary>
    public static Gates<T> Of(IReadOnlyList<Tensor> parameters) => new()
    {
        APre = CpuTensor.Span<T>(parameters[0])[0],
        APost = CpuTensor.Span<T>(parameters[1])[0],
        ARes = CpuTensor.Span<T>(parameters[2])[0],
        BPre = CpuTensor.Span<T>(parameters[3]),
        BPost = CpuTensor.Span<T>(parameters[4]),
        BRes = CpuTensor.Span<T>(parameters[5]),
    };
}
