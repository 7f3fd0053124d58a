using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using static TorchSharp.torch;

namespace Mhc.Kernels;

/// <summary>
/// The two passes over the stream state <c>x: [..., n, d]</c> that every multi-stream connection makes,
/// forward and backward, each one pass (SIMD over d, parallel over tokens). CPU, float32/float64,
/// contiguous tensors. Read: the branch input <c>u = Σ_j pre_j x_j</c>. Write: the merge of HC's residual
/// and post mappings that the mHC paper fuses, <c>out_i = Σ_j res_ij x_j + post_i · y</c>.
/// </summary>
static class StreamMixing
{
    const long Chunk = 16;

    /// <summary><c>u = Σ_j pre_j x_j</c>: <c>[..., n, d]</c>, <c>[..., n]</c> → <c>[..., d]</c>.</summary>
    public static Tensor Read(Tensor x, Tensor pre)
    {
        var u = empty(x.shape[..^2].Append(x.size(-1)).ToArray(), x.dtype, x.device);
        if (x.dtype == ScalarType.Float32) Read<float>(x, pre, u);
        else Read<double>(x, pre, u);
        return u;
    }

    /// <summary>
    /// The state gradient of both passes and H_pre's, from the output gradient <paramref name="grad"/> and the
    /// branch input's <paramref name="gu"/>: <c>gx_j = Σ_i res_ij g_i + pre_j gu</c> (written once), <c>gpre_j = &lt;gu, x_j&gt;</c>.
    /// With <paramref name="overwriteGrad"/> gx is written into grad's memory (returned as a new handle to it).
    /// </summary>
    public static (Tensor Gx, Tensor Gpre) ReadBackward(Tensor x, Tensor pre, Tensor res, Tensor gu, Tensor grad, bool overwriteGrad = false)
    {
        var (gx, gpre) = (StateGradientBuffer(x, grad, overwriteGrad), empty_like(pre));
        if (x.dtype == ScalarType.Float32) ReadBackward<float>(x, pre, res, gu, grad, gx, gpre);
        else ReadBackward<double>(x, pre, res, gu, grad, gx, gpre);
        return (gx, gpre);
    }

    /// <summary><c>out_i = Σ_j res_ij x_j + post_i · y</c>.</summary>
    public static Tensor Write(Tensor x, Tensor res, Tensor post, Tensor y)
    {
        var output = empty_like(x);
        if (x.dtype == ScalarType.Float32) Write<float>(x, res, post, y, output);
        else Write<double>(x, res, post, y, output);
        return output;
    }

    /// <summary>
    /// The coefficient and branch gradients of <see cref="Write"/> (gres, gpost, gy) from the output gradient;
    /// its state gradient is written by <see cref="ReadBackward"/>, so that gx is written once.
    /// </summary>
    public static (Tensor Gres, Tensor Gpost, Tensor Gy) WriteBackward(Tensor x, Tensor post, Tensor y, Tensor grad)
    {
        var (gres, gpost, gy) = (empty(post.shape.Append(post.size(-1)).ToArray(), post.dtype), empty_like(post), empty_like(y));
        if (x.dtype == ScalarType.Float32) WriteBackward<float>(x, post, y, grad, gres, gpost, gy);
        else WriteBackward<double>(x, post, y, grad, gres, gpost, gy);
        return (gres, gpost, gy);
    }

    /// <summary>
    /// Where a state gradient goes: a new tensor, or the output gradient's own memory when the caller hands it
    /// over. Reusing it saves allocating (and first touching) a state-sized buffer per sub-layer in backward.
    /// </summary>
    internal static Tensor StateGradientBuffer(Tensor x, Tensor grad, bool overwriteGrad) => overwriteGrad ? grad.alias() : empty_like(x);

    static (int N, int D) Shape(Tensor x) => ((int)x.size(-2), (int)x.size(-1));

    static void Read<T>(Tensor x, Tensor pre, Tensor output) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (n, d) = Shape(x);
        CpuTensor.ParallelChunks(x.numel() / (n * d), Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> xs = CpuTensor.Span<T>(x), ps = CpuTensor.Span<T>(pre);
            var us = CpuTensor.Span<T>(output);
            for (var t = (int)t0; t < t1; t++) ReadToken(us.Slice(t * d, d), xs.Slice(t * n * d, n * d), ps.Slice(t * n, n), n, d);
        });
    }

    /// <summary>One token's branch input <c>u = Σ_j pre_j x_j</c> (x: its n rows of d).</summary>
    internal static void ReadToken<T>(Span<T> u, ReadOnlySpan<T> x, ReadOnlySpan<T> pre, int n, int d) where T : unmanaged, IFloatingPointIeee754<T>
    {
        VectorOps.WeightedRows(u, [], T.Zero, x[..(n * d)], pre[..n]);
    }

    /// <summary>
    /// One token's state gradient, written once: <c>gx_j = c · x_j + pre_j gu + Σ_i res_ij g_i</c>, the first
    /// term only when <paramref name="x"/> is not empty (mHC's RMS share). Rows: n of d; res: n × n. gx may be
    /// g's own memory: every row reads all of g, so the rows are then built in <paramref name="scratch"/> (n·d) first.
    /// </summary>
    internal static void StateGradientToken<T>(Span<T> gx, ReadOnlySpan<T> g, ReadOnlySpan<T> gu, ReadOnlySpan<T> pre, ReadOnlySpan<T> res,
        ReadOnlySpan<T> x, T c, int n, int d, Span<T> scratch) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var inPlace = gx.Overlaps(g);
        var target = inPlace ? scratch[..(n * d)] : gx;
        Span<T> column = stackalloc T[n];
        for (var j = 0; j < n; j++)
        {
            var row = target.Slice(j * d, d);
            for (var i = 0; i < n; i++) column[i] = res[i * n + j];
            VectorOps.WeightedRows(row, gu, pre[j], g[..(n * d)], column);
            if (!x.IsEmpty) VectorOps.AddScaled(row, x.Slice(j * d, d), c);
        }
        if (inPlace) target.CopyTo(gx);
    }

    static void ReadBackward<T>(Tensor x, Tensor pre, Tensor res, Tensor gu, Tensor grad, Tensor gx, Tensor gpre) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (n, d) = Shape(x);
        CpuTensor.ParallelChunks(x.numel() / (n * d), Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> xs = CpuTensor.Span<T>(x), ps = CpuTensor.Span<T>(pre), rs = CpuTensor.Span<T>(res), us = CpuTensor.Span<T>(gu), gs = CpuTensor.Span<T>(grad);
            Span<T> gxs = CpuTensor.Span<T>(gx), gps = CpuTensor.Span<T>(gpre);
            var scratch = ArrayPool<T>.Shared.Rent(n * d);
            for (var t = (int)t0; t < t1; t++)
            {
                var gut = us.Slice(t * d, d);
                StateGradientToken(gxs.Slice(t * n * d, n * d), gs.Slice(t * n * d, n * d), gut, ps.Slice(t * n, n), rs.Slice(t * n * n, n * n), [], T.Zero, n, d, scratch);
                VectorOps.Dots(gut, xs.Slice(t * n * d, n * d), d, gps.Slice(t * n, n));   // gpre_j = <gu, x_j>
            }
            ArrayPool<T>.Shared.Return(scratch);
        });
    }

    static void Write<T>(Tensor x, Tensor res, Tensor post, Tensor y, Tensor output) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (n, d) = Shape(x);
        CpuTensor.ParallelChunks(x.numel() / (n * d), Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> xs = CpuTensor.Span<T>(x), rs = CpuTensor.Span<T>(res), ps = CpuTensor.Span<T>(post), ys = CpuTensor.Span<T>(y);
            var os = CpuTensor.Span<T>(output);
            for (var t = (int)t0; t < t1; t++)
            {
                ReadOnlySpan<T> yt = ys.Slice(t * d, d), xt = xs.Slice(t * n * d, n * d);
                for (var i = 0; i < n; i++)
                    VectorOps.WeightedRows(os.Slice((t * n + i) * d, d), yt, ps[t * n + i], xt, rs.Slice((t * n + i) * n, n));
            }
        });
    }

    static void WriteBackward<T>(Tensor x, Tensor post, Tensor y, Tensor grad, Tensor gres, Tensor gpost, Tensor gy)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (n, d) = Shape(x);
        CpuTensor.ParallelChunks(x.numel() / (n * d), Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> xs = CpuTensor.Span<T>(x), ps = CpuTensor.Span<T>(post), ys = CpuTensor.Span<T>(y), gs = CpuTensor.Span<T>(grad);
            Span<T> grs = CpuTensor.Span<T>(gres), gps = CpuTensor.Span<T>(gpost), gys = CpuTensor.Span<T>(gy);
            for (var t = (int)t0; t < t1; t++)
            {
                var yt = ys.Slice(t * d, d);
                VectorOps.WeightedRows(gys.Slice(t * d, d), [], T.Zero, gs.Slice(t * n * d, n * d), ps.Slice(t * n, n));   // gy = Σ_i post_i g_i
                for (var i = 0; i < n; i++)
                {
                    var gi = gs.Slice((t * n + i) * d, d);
                    gps[t * n + i] = VectorOps.Dot(gi, yt);                      // gpost_i = <g_i, y>
                    VectorOps.Dots(gi, xs.Slice(t * n * d, n * d), d, grs.Slice((t * n + i) * n, n));   // gres_ij = <g_i, x_j>
                }
            }
        });
    }
}
