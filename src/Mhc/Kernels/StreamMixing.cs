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
    /// The state gradient of both passes and the gradients of H_pre and H_res, from the output gradient
    /// <paramref name="grad"/> and the branch input's <paramref name="gu"/>: <c>gx_j = Σ_i res_ij g_i + pre_j gu</c>
    /// (written once), <c>gpre_j = &lt;gu, x_j&gt;</c>, <c>gres_ij = &lt;g_i, x_j&gt;</c>. With
    /// <paramref name="overwriteGrad"/> gx is written into grad's memory (returned as a new handle to it).
    /// </summary>
    public static (Tensor Gx, Tensor Gpre, Tensor Gres) ReadBackward(Tensor x, Tensor pre, Tensor res, Tensor gu, Tensor grad, bool overwriteGrad = false)
    {
        var (gx, gpre, gres) = (StateGradientBuffer(x, grad, overwriteGrad), empty_like(pre), empty_like(res));
        if (x.dtype == ScalarType.Float32) ReadBackward<float>(x, pre, res, gu, grad, gx, gpre, gres);
        else ReadBackward<double>(x, pre, res, gu, grad, gx, gpre, gres);
        return (gx, gpre, gres);
    }

    /// <summary><c>out_i = Σ_j res_ij x_j + post_i · y</c>.</summary>
    public static Tensor Write(Tensor x, Tensor res, Tensor post, Tensor y) => new WritePass(x, res, post, y).Run();

    /// <summary>
    /// What the branch's backward needs from <see cref="Write"/>'s backward: gpost and gy, from the output
    /// gradient <c>[..., n, d]</c>. H_res's gradient <c>&lt;g_i, x_j&gt;</c> and the state gradient come later in the
    /// coefficient backward (<see cref="ReadBackward"/> or a connection's kernel), which reads the state anyway:
    /// so the state is not read here at all.
    /// </summary>
    public static (Tensor Gpost, Tensor Gy) WriteBackward(Tensor post, Tensor y, Tensor grad)
    {
        var pass = new WriteBackwardPass(post, y);
        pass.Run(grad);
        return (pass.Gpost, pass.Gy);
    }

    /// <summary>
    /// <see cref="Write"/> by token ranges, so that the pass that reads its output next (the next connection's
    /// coefficients) can make each range of the new state while it is in cache instead of reading it back:
    /// one pass over the state fewer per sub-layer.
    /// </summary>
    internal sealed class WritePass(Tensor x, Tensor res, Tensor post, Tensor y)
    {
        /// <summary>The new state, made range by range by <see cref="Tokens"/> (or whole by <see cref="Run"/>).</summary>
        public Tensor Output { get; } = empty_like(x);

        /// <summary>Writes tokens t0..t1−1 of <see cref="Output"/>.</summary>
        public void Tokens(long t0, long t1)
        {
            if (x.dtype == ScalarType.Float32) Tokens<float>((int)t0, (int)t1);
            else Tokens<double>((int)t0, (int)t1);
        }

        /// <summary>Writes all of <see cref="Output"/> and returns it.</summary>
        public Tensor Run()
        {
            var (n, d) = Shape(x);
            CpuTensor.ParallelChunks(x.numel() / (n * d), Chunk, Tokens);
            return Output;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Tokens<T>(int t0, int t1) where T : unmanaged, IFloatingPointIeee754<T>
        {
            var (n, d) = Shape(x);
            ReadOnlySpan<T> xs = CpuTensor.Span<T>(x), rs = CpuTensor.Span<T>(res), ps = CpuTensor.Span<T>(post), ys = CpuTensor.Span<T>(y);
            var os = CpuTensor.Span<T>(Output);
            for (var t = t0; t < t1; t++)
            {
                ReadOnlySpan<T> yt = ys.Slice(t * d, d), xt = xs.Slice(t * n * d, n * d);
                for (var i = 0; i < n; i++)
                    VectorOps.WeightedRows(os.Slice((t * n + i) * d, d), yt, ps[t * n + i], xt, rs.Slice((t * n + i) * n, n));
            }
        }
    }

    /// <summary>
    /// <see cref="WriteBackward"/> by token ranges, so that the pass that writes its input gradient (the next
    /// connection's coefficient backward, which makes this write's output gradient) can run it on each range
    /// while that range is in cache instead of reading the gradient back: one pass fewer per sub-layer.
    /// </summary>
    internal sealed class WriteBackwardPass(Tensor post, Tensor y)
    {
        /// <summary>H_post's gradient <c>&lt;g_i, y&gt;</c>.</summary>
        public Tensor Gpost { get; } = empty_like(post);

        /// <summary>The branch output's gradient <c>Σ_i post_i g_i</c>.</summary>
        public Tensor Gy { get; } = empty_like(y);

        /// <summary>Both gradients of tokens t0..t1−1 from the write's output gradient <paramref name="grad"/> (n·d values per token).</summary>
        public void Tokens(Tensor grad, long t0, long t1)
        {
            if (grad.dtype == ScalarType.Float32) Tokens<float>(grad, (int)t0, (int)t1);
            else Tokens<double>(grad, (int)t0, (int)t1);
        }

        /// <summary>Both gradients of every token.</summary>
        public void Run(Tensor grad) => CpuTensor.ParallelChunks(y.numel() / y.size(-1), Chunk, (t0, t1) => Tokens(grad, t0, t1));

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Tokens<T>(Tensor grad, int t0, int t1) where T : unmanaged, IFloatingPointIeee754<T>
        {
            // The gradient may come flattened ([N, n·d]); post and y give the shape.
            var (n, d) = ((int)post.size(-1), (int)y.size(-1));
            ReadOnlySpan<T> ps = CpuTensor.Span<T>(post), ys = CpuTensor.Span<T>(y), gs = CpuTensor.Span<T>(grad);
            Span<T> gps = CpuTensor.Span<T>(Gpost), gys = CpuTensor.Span<T>(Gy);
            for (var t = t0; t < t1; t++)
            {
                var gt = gs.Slice(t * n * d, n * d);
                VectorOps.WeightedRows(gys.Slice(t * d, d), [], T.Zero, gt, ps.Slice(t * n, n));   // gy = Σ_i post_i g_i
                VectorOps.Dots(ys.Slice(t * d, d), gt, d, gps.Slice(t * n, n));                    // gpost_i = <g_i, y>
            }
        }
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

    /// <summary>
    /// One token's gradients of H_pre and H_res from both passes: <c>gpre_j = &lt;gu, x_j&gt;</c>,
    /// <c>gres_ij = &lt;g_i, x_j&gt;</c> (g, x: its n rows of d). Callers run it before the state gradient,
    /// which may be written over g.
    /// </summary>
    internal static void MixingGradientsToken<T>(Span<T> gpre, Span<T> gres, ReadOnlySpan<T> gu, ReadOnlySpan<T> g, ReadOnlySpan<T> x, int n, int d)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        x = x[..(n * d)];
        VectorOps.Dots(gu, x, d, gpre[..n]);
        VectorOps.CrossDots(g, d, n, x, d, n, d, gres);
    }

    static void ReadBackward<T>(Tensor x, Tensor pre, Tensor res, Tensor gu, Tensor grad, Tensor gx, Tensor gpre, Tensor gres) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (n, d) = Shape(x);
        CpuTensor.ParallelChunks(x.numel() / (n * d), Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> xs = CpuTensor.Span<T>(x), ps = CpuTensor.Span<T>(pre), rs = CpuTensor.Span<T>(res), us = CpuTensor.Span<T>(gu), gs = CpuTensor.Span<T>(grad);
            Span<T> gxs = CpuTensor.Span<T>(gx), gps = CpuTensor.Span<T>(gpre), grs = CpuTensor.Span<T>(gres);
            var scratch = ArrayPool<T>.Shared.Rent(n * d);
            for (var t = (int)t0; t < t1; t++)
            {
                var gut = us.Slice(t * d, d);
                MixingGradientsToken(gps.Slice(t * n, n), grs.Slice(t * n * n, n * n), gut, gs.Slice(t * n * d, n * d), xs.Slice(t * n * d, n * d), n, d);
                StateGradientToken(gxs.Slice(t * n * d, n * d), gs.Slice(t * n * d, n * d), gut, ps.Slice(t * n, n), rs.Slice(t * n * n, n * n), [], T.Zero, n, d, scratch);
            }
            ArrayPool<T>.Shared.Return(scratch);
        });
    }
}
