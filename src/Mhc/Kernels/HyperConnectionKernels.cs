using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Mhc.Kernels;

/// <summary>
/// Dynamic HC's coefficients and branch input in one read of the stream state, and their backward in
/// one pass that writes the state gradient once. Per stream row <c>x_i</c> (a token's stream i, d values)
/// the LayerNorm and the n + 2 projections <c>W = [W_m | W_r | W_β]</c> fold into dot products of the
/// centred row: <c>LN(x_i)·W_k = rstd_i (x_i − μ_i)·(γ ⊙ W_k) + β·W_k</c>, so no normalised copy of the
/// state is written or kept. Backward keeps per work item the partial sums
/// <c>S_k = Σ_rows x̂ gz_k</c> and <c>T_k = Σ_rows gz_k</c>, from which <c>∂W_k = γ ⊙ S_k + β T_k</c>,
/// <c>∂γ = Σ_k W_k ⊙ S_k</c>, <c>∂β = Σ_k W_k T_k</c>; the LayerNorm shares of all of a work item's rows (the
/// state gradient's and S's) are two small products over its rows, centred once into a scratch.
/// CPU, float32/float64, contiguous tensors.
/// </summary>
static class HyperConnectionKernels
{
    // Tokens per work item: each keeps one partial sum of the parameter gradients ((n + 2)·(d + 1) values and the gates').
    const int Chunk = 32;

    /// <summary>What the forward computes for a state <c>[N, n, d]</c>, and keeps for the backward.</summary>
    /// <param name="Pre">H_pre <c>[N, n]</c>.</param>
    /// <param name="Post">H_post <c>[N, n]</c>.</param>
    /// <param name="Res">H_res <c>[N, n, n]</c>, row i = output stream i (Arᵀ).</param>
    /// <param name="Projected">The centred projections <c>x̂_i·(γ ⊙ W_k)</c> <c>[N, n, n + 2]</c>.</param>
    /// <param name="Mean">Row means μ <c>[N, n]</c>.</param>
    /// <param name="Rstd">Row inverse standard deviations <c>[N, n]</c>.</param>
    /// <param name="BranchInput">Σ_j pre_j x_j <c>[N, d]</c> if asked.</param>
    public sealed record Result(Tensor Pre, Tensor Post, Tensor Res, Tensor Projected, Tensor Mean, Tensor Rstd, Tensor? BranchInput);

    /// <summary>
    /// Coefficients of <paramref name="x"/> <c>[N, n, d]</c> from dynamic HC's parameters. With <paramref name="write"/>, x
    /// is that write's output, made here chunk by chunk.
    /// </summary>
    public static Result Forward(Tensor x, HyperParameters parameters, bool useTanh, double epsilon, bool branchInput,
        StreamMixing.WritePass? write = null)
    {
        var (tokens, n, d) = (x.size(0), x.size(1), x.size(2));
        var result = new Result(empty([tokens, n], x.dtype), empty([tokens, n], x.dtype), empty([tokens, n, n], x.dtype),
            empty([tokens, n, n + 2], x.dtype), empty([tokens, n], x.dtype), empty([tokens, n], x.dtype),
            branchInput ? empty([tokens, d], x.dtype) : null);
        if (x.dtype == ScalarType.Float32) Forward(x, new Weights<float>(parameters, useTanh, epsilon), result, write);
        else Forward(x, new Weights<double>(parameters, useTanh, epsilon), result, write);
        return result;
    }

    /// <summary>
    /// Backward of <see cref="Forward"/> given the gradient <paramref name="g"/> of the connection's output
    /// state <c>[N, n, d]</c>, of the branch input <paramref name="gu"/> <c>[N, d]</c> and of H_post (H_res's,
    /// <c>&lt;g_i, x_j&gt;</c>, is computed here):
    /// the whole state gradient <c>[N, n, d]</c> (mixing and coefficient shares; in g's memory with
    /// <paramref name="overwriteG"/>) and the gradient of every parameter.
    /// <paramref name="previous"/> runs on each chunk of the state gradient once it is final.
    /// </summary>
    public static (Tensor Gx, HyperParameters Gradients) Backward(Tensor x, HyperParameters parameters, bool useTanh, Result saved,
        Tensor g, Tensor gu, Tensor gPost, bool overwriteG = false, StreamMixing.WriteBackwardPass? previous = null)
    {
        var gx = StreamMixing.StateGradientBuffer(x, g, overwriteG);
        var grads = x.dtype == ScalarType.Float32
            ? Backward(x, new Weights<float>(parameters, useTanh, 0), saved, g, gu, gPost, gx, previous)
            : Backward(x, new Weights<double>(parameters, useTanh, 0), saved, g, gu, gPost, gx, previous);
        return (gx, grads);
    }

    static void Forward<T>(Tensor x, Weights<T> w, Result result, StreamMixing.WritePass? write) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (n, d, width) = (w.N, w.D, w.Width);
        var inverseD = T.One / T.CreateChecked(d);
        CpuTensor.ParallelChunks(x.size(0), Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            write?.Tokens(t0, t1);   // the chunk's state, made here and read from cache below
            ReadOnlySpan<T> xs = CpuTensor.Span<T>(x);
            Span<T> pre = CpuTensor.Span<T>(result.Pre), post = CpuTensor.Span<T>(result.Post), res = CpuTensor.Span<T>(result.Res);
            Span<T> projected = CpuTensor.Span<T>(result.Projected), mean = CpuTensor.Span<T>(result.Mean), rstd = CpuTensor.Span<T>(result.Rstd);
            var branchInput = result.BranchInput is { } u ? CpuTensor.Span<T>(u) : [];
            var (first, rows) = ((int)t0 * n, (int)(t1 - t0) * n);
            var buffer = ArrayPool<T>.Shared.Rent(d + rows * width);
            Span<T> centred = buffer.AsSpan(0, d), activations = buffer.AsSpan(d, rows * width);
            for (var r = first; r < first + rows; r++)
            {
                var row = xs.Slice(r * d, d);
                var mu = mean[r] = VectorOps.Sum(row) * inverseD;
                VectorOps.Affine(centred, row, T.One, -mu);
                var s = rstd[r] = T.One / T.Sqrt(VectorOps.Dot<T>(centred, centred) * inverseD + w.Epsilon);
                var projections = projected.Slice(r * width, width);
                VectorOps.Dots<T>(centred, w.ScaledColumns, d, projections);
                VectorOps.Scale(projections, projections, s);
            }
            w.Activations(projected.Slice(first * width, rows * width), activations);
            for (var t = (int)t0; t < t1; t++)
            {
                for (var i = 0; i < n; i++)
                {
                    var r = t * n + i;
                    for (var k = 0; k < width; k++)
                    {
                        var coefficient = w.Coefficient(i, k, activations[(r - first) * width + k]);
                        if (k == 0) pre[r] = coefficient;
                        else if (k <= n) res[(t * n + k - 1) * n + i] = coefficient;   // Res = Arᵀ: row i of Ar is column i of Res
                        else post[r] = coefficient;
                    }
                }
                if (result.BranchInput is not null)
                    StreamMixing.ReadToken(branchInput.Slice(t * d, d), xs.Slice(t * n * d, n * d), pre.Slice(t * n, n), n, d);
            }
            ArrayPool<T>.Shared.Return(buffer);
        });
    }

    static HyperParameters Backward<T>(Tensor x, Weights<T> w, Result saved, Tensor g, Tensor gu, Tensor gPost, Tensor gx, StreamMixing.WriteBackwardPass? previous)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (tokens, n, d, width) = ((int)x.size(0), w.N, w.D, w.Width);
        var inverseD = T.One / T.CreateChecked(d);
        var layout = new PartialLayout(n, d);
        var chunks = (tokens + Chunk - 1) / Chunk;
        // Per-chunk partial sums, added in chunk order afterwards: reproducible for any thread count.
        var partials = ArrayPool<T>.Shared.Rent(chunks * layout.Size);
        partials.AsSpan(0, chunks * layout.Size).Clear();
        CpuTensor.ParallelChunks(tokens, Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> xs = CpuTensor.Span<T>(x), gs = CpuTensor.Span<T>(g), gus = CpuTensor.Span<T>(gu), gPosts = CpuTensor.Span<T>(gPost);
            ReadOnlySpan<T> pre = CpuTensor.Span<T>(saved.Pre), res = CpuTensor.Span<T>(saved.Res), projected = CpuTensor.Span<T>(saved.Projected);
            ReadOnlySpan<T> mean = CpuTensor.Span<T>(saved.Mean), rstd = CpuTensor.Span<T>(saved.Rstd);
            var gxs = CpuTensor.Span<T>(gx);
            var partial = partials.AsSpan((int)(t0 / Chunk) * layout.Size, layout.Size);
            var (first, rows) = ((int)t0 * n, (int)(t1 - t0) * n);
            var buffer = ArrayPool<T>.Shared.Rent(2 * rows * width + n * d + rows * d);
            Span<T> activations = buffer.AsSpan(0, rows * width), e = buffer.AsSpan(rows * width, rows * width);
            Span<T> scratch = buffer.AsSpan(2 * rows * width, n * d), centred = buffer.AsSpan(2 * rows * width + n * d, rows * d);
            w.Activations(projected.Slice(first * width, rows * width), activations);
            Span<T> gPre = stackalloc T[n], gRes = stackalloc T[n * n];
            for (var t = (int)t0; t < t1; t++)
            {
                var gut = gus.Slice(t * d, d);
                StreamMixing.MixingGradientsToken(gPre, gRes, gut, gs.Slice(t * n * d, n * d), xs.Slice(t * n * d, n * d), n, d);
                // The mixing's share pre_j gu + Σ_i res_ij g_i, then each row's own LayerNorm share while it is in cache.
                StreamMixing.StateGradientToken(gxs.Slice(t * n * d, n * d), gs.Slice(t * n * d, n * d), gut, pre.Slice(t * n, n),
                    res.Slice(t * n * n, n * n), [], T.Zero, n, d, scratch);
                for (var i = 0; i < n; i++)
                {
                    var r = t * n + i;
                    var s = rstd[r];
                    T dotProjected = T.Zero, dotMean = T.Zero;
                    for (var k = 0; k < width; k++)
                    {
                        var gCoefficient = k == 0 ? gPre[i] : k <= n ? gRes[(k - 1) * n + i] : gPosts[r];
                        var a = activations[(r - first) * width + k];
                        // Static part, gate scalar, then through the gate and tanh to the projection z_k.
                        partial[k <= n ? layout.StaticAlpha + i * (n + 1) + k : layout.StaticBeta + i] += gCoefficient;
                        partial[k <= n ? layout.AlphaScale : layout.BetaScale] += gCoefficient * a;
                        var gz = gCoefficient * (k <= n ? w.AlphaScale : w.BetaScale) * (w.Tanh ? T.One - a * a : T.One);
                        partial[layout.ColumnSums + k] += gz;
                        e[(r - first) * width + k] = gz * s;
                        dotProjected += gz * projected[r * width + k];
                        dotMean += gz * w.ScaledMean[k];
                    }
                    // LayerNorm backward: rstd (h − mean(h) − x̂ mean(h ⊙ x̂)) with h = Σ_k gz_k γ⊙W_k; here the last two
                    // terms, q·(x − μ) + c0, below h's.
                    CentreRow(centred.Slice((r - first) * d, d), gxs.Slice(r * d, d), xs.Slice(r * d, d), mean[r], -s * s * dotProjected * inverseD, -s * dotMean);
                }
            }
            // For the chunk's rows at once: gx_r += Σ_k e_rk γ⊙W_k, and the partial sums S_k += Σ_r e_rk (x_r − μ_r).
            VectorOps.AddProduct(gxs[(first * d)..], d, rows, e, width, 1, w.ScaledColumns, d, width, d);
            VectorOps.AddProduct(partial[..(width * d)], d, width, e, 1, width, centred, d, rows, d);
            previous?.Tokens(gx, t0, t1);   // the chunk's gradient is final and still in cache
            ArrayPool<T>.Shared.Return(buffer);
        });
        var grads = w.Gradients(partials.AsSpan(0, chunks * layout.Size), chunks, layout);
        ArrayPool<T>.Shared.Return(partials);
        return grads;
    }

    /// <summary>One row's centred copy <c>c = x − μ</c>, and <c>gx += q·c + c0</c>, in one sweep.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void CentreRow<T>(Span<T> centred, Span<T> gx, ReadOnlySpan<T> x, T mu, T q, T c0) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var d = gx.Length;
        x = x[..d];
        centred = centred[..d];
        ref var pc = ref MemoryMarshal.GetReference(centred);
        ref var pgx = ref MemoryMarshal.GetReference(gx);
        ref var px = ref MemoryMarshal.GetReference(x);
        var (muv, qv, c0v) = (new Vector<T>(mu), new Vector<T>(q), new Vector<T>(c0));
        var (w, length) = (VectorOps.Width<T>(), (nuint)d);
        nuint k = 0;
        for (; k + w <= length; k += w)
        {
            var c = Vector.LoadUnsafe(ref px, k) - muv;
            c.StoreUnsafe(ref pc, k);
            VectorOps.MultiplyAdd(c, qv, Vector.LoadUnsafe(ref pgx, k) + c0v).StoreUnsafe(ref pgx, k);
        }
        for (; k < length; k++)
        {
            var c = Unsafe.Add(ref pc, k) = Unsafe.Add(ref px, k) - mu;
            Unsafe.Add(ref pgx, k) += q * c + c0;
        }
    }

    /// <summary>Offsets in one partial sum: S_k <c>[(n + 2), d]</c>, T_k <c>[n + 2]</c>, static_alpha, static_beta, the two gates.</summary>
    readonly record struct PartialLayout(int N, int D)
    {
        public static int Sums => 0;
        public int ColumnSums => (N + 2) * D;
        public int StaticAlpha => ColumnSums + N + 2;
        public int StaticBeta => StaticAlpha + N * (N + 1);
        public int AlphaScale => StaticBeta + N;
        public int BetaScale => AlphaScale + 1;
        public int Size => BetaScale + 1;
    }

    /// <summary>The parameters read once per call, with the products the per-row work uses.</summary>
    sealed class Weights<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        readonly T[] columns, scaled, gamma, bias, staticAlpha, staticBeta;

        public Weights(HyperParameters parameters, bool useTanh, double epsilon)
        {
            ReadOnlySpan<T> alpha = CpuTensor.Span<T>(parameters.DynamicAlpha), beta = CpuTensor.Span<T>(parameters.DynamicBeta);
            ReadOnlySpan<T> gamma = CpuTensor.Span<T>(parameters.NormWeight), bias = CpuTensor.Span<T>(parameters.NormBias);
            N = (int)parameters.StaticAlpha.size(0);
            D = gamma.Length;
            Width = N + 2;
            (columns, scaled, Shift, ScaledMean) = (new T[Width * D], new T[Width * D], new T[Width], new T[Width]);
            for (var k = 0; k < Width; k++)
            {
                var column = columns.AsSpan(k * D, D);
                for (var c = 0; c < D; c++) column[c] = k <= N ? alpha[c * (N + 1) + k] : beta[c];
                var scaledColumn = scaled.AsSpan(k * D, D);
                for (var c = 0; c < D; c++) scaledColumn[c] = gamma[c] * column[c];
                Shift[k] = VectorOps.Dot<T>(bias, column);
                ScaledMean[k] = VectorOps.Sum<T>(scaledColumn) / T.CreateChecked(D);
            }
            (this.gamma, this.bias) = (gamma.ToArray(), bias.ToArray());
            (staticAlpha, staticBeta) = (CpuTensor.Span<T>(parameters.StaticAlpha).ToArray(), CpuTensor.Span<T>(parameters.StaticBeta).ToArray());
            (AlphaScale, BetaScale) = (CpuTensor.Span<T>(parameters.AlphaScale)[0], CpuTensor.Span<T>(parameters.BetaScale)[0]);
            Tanh = useTanh;
            Epsilon = T.CreateChecked(epsilon);
        }

        public int N { get; }
        public int D { get; }
        /// <summary>Projections per row: n + 2 (pre, n res, post).</summary>
        public int Width { get; }
        /// <summary>β·W_k: the LayerNorm bias's share of each projection.</summary>
        public T[] Shift { get; }
        /// <summary>mean(γ ⊙ W_k).</summary>
        public T[] ScaledMean { get; }
        public T AlphaScale { get; }
        public T BetaScale { get; }
        public bool Tanh { get; }
        public T Epsilon { get; }

        /// <summary>All γ ⊙ W_k, one after the other.</summary>
        public ReadOnlySpan<T> ScaledColumns => scaled;

        /// <summary>The activations of a run of rows' projections: <c>tanh(p + β·W_k)</c>, or without tanh <c>p + β·W_k</c>.</summary>
        public void Activations(ReadOnlySpan<T> projected, Span<T> activations)
        {
            for (var r = 0; r < projected.Length; r += Width)
                for (var k = 0; k < Width; k++) activations[r + k] = projected[r + k] + Shift[k];
            if (Tanh) VectorOps.Tanh(activations);
        }

        /// <summary>Entry k of row i of [Am | Ar | B] from its activation a.</summary>
        public T Coefficient(int i, int k, T a) => k <= N ? AlphaScale * a + staticAlpha[i * (N + 1) + k] : BetaScale * a + staticBeta[i];

        /// <summary>The eight parameter gradients from the per-chunk partial sums, added in chunk order.</summary>
        public HyperParameters Gradients(ReadOnlySpan<T> partials, int chunks, PartialLayout layout)
        {
            var total = new T[layout.Size];
            for (var c = 0; c < chunks; c++)
                for (var k = 0; k < layout.Size; k++) total[k] += partials[c * layout.Size + k];
            var (gAlpha, gBeta, gGamma, gBias) = (new T[D * (N + 1)], new T[D], new T[D], new T[D]);
            for (var k = 0; k < Width; k++)
            {
                var tk = total[layout.ColumnSums + k];
                ReadOnlySpan<T> sk = total.AsSpan(PartialLayout.Sums + k * D, D), column = columns.AsSpan(k * D, D);
                for (var c = 0; c < D; c++)
                {
                    var gw = gamma[c] * sk[c] + bias[c] * tk;                 // ∂W_k = γ ⊙ S_k + β T_k
                    if (k <= N) gAlpha[c * (N + 1) + k] = gw;
                    else gBeta[c] = gw;
                    gGamma[c] += column[c] * sk[c];
                    gBias[c] += column[c] * tk;
                }
            }
            return new HyperParameters(
                CpuTensor.From<T>(gAlpha, D, N + 1), CpuTensor.From<T>(gBeta, D), CpuTensor.From<T>(gGamma, D), CpuTensor.From<T>(gBias, D),
                CpuTensor.From<T>(total.AsSpan(layout.StaticAlpha, N * (N + 1)), N, N + 1), CpuTensor.From<T>(total.AsSpan(layout.StaticBeta, N), N),
                CpuTensor.From<T>(total.AsSpan(layout.AlphaScale, 1)), CpuTensor.From<T>(total.AsSpan(layout.BetaScale, 1)));
        }
    }
}
