using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using static TorchSharp.torch;

namespace Mhc.Kernels;

/// <summary>
/// mHC's own passes over the stream state of one sub-layer (mHC paper §4.3, kernel fusion), each one
/// read of the state per block of tokens kept in cache. Forward: the projection <c>raw = v·φ</c>, the RMS
/// of the flattened state v, the coefficients (<see cref="ManifoldCoefficientKernels"/>) and the branch
/// input Σ_j pre_j x_j. Backward: H_pre's gradient, the coefficient backward, <c>g_raw</c>, the state
/// gradient written once, <c>Σ_i res_ij g_i + pre_j gu − (s³ &lt;g_projected, raw&gt; / nd) v + g_raw·φᵀ</c>,
/// and φ's gradient <c>vᵀ·g_raw</c>. All three products with φ are small register-tiled products
/// (<see cref="VectorOps.AddProduct{T}"/>) in the pass that reads the state anyway, while each block is in
/// cache, instead of libtorch matmuls that each made one more pass over the state or its gradient.
/// CPU, float32/float64, contiguous tensors.
/// </summary>
static class ManifoldConnectionKernels
{
    // Tokens per work item, whose state (16 × n·d values) stays in cache through the steps of a pass; the
    // backward keeps one partial sum of the gate gradients per block.
    const int Block = 16;

    // Work items of the backward, whatever the thread count; each keeps a partial sum of φ's gradient
    // (196 KB at R1, 393 KB at R2), cleared first and read again when they are added: 16 measured 5–10 ms per
    // step slower than 8 or 4 (chain, same process), and 8 still balances two threads when one is held up.
    const int MaxRanges = 8;

    // Rows of φ's gradient per work item when the partial sums are added.
    const int PhiRowsEach = 256;

    // Padding of φᵀ's rows (a cache line of floats): at n·d = 2048 they would be 8 KB apart, and the 24 rows a
    // product tile reads at once would all fall in the same first-level cache sets (measured: 10% slower).
    const int RowPadding = 16;

    /// <summary>What the forward computes for tokens <c>v: [N, n·d]</c>, and keeps for the backward.</summary>
    public sealed record Result(Tensor Pre, Tensor Post, Tensor Res, Tensor Projected, Tensor Scale, Tensor? BranchInput);

    /// <summary>
    /// Coefficients of <paramref name="v"/> <c>[N, n·d]</c> from mHC's parameters <paramref name="p"/>: H_pre <c>[N, n]</c>, H_post <c>[N, n]</c>, H_res
    /// <c>[N, n, n]</c>, the normalised projection <c>[N, n² + 2n]</c>, the inverse RMS <c>[N]</c> and, if asked,
    /// the branch input <c>[N, d]</c>. With <paramref name="write"/>, v is that write's output, made here block by block.
    /// </summary>
    public static Result Forward(Tensor v, ManifoldParameters p, int n, int iterations, double epsilon, bool branchInput,
        StreamMixing.WritePass? write = null)
    {
        var (tokens, phi) = (v.size(0), p.Phi);
        var width = phi.size(1);
        var result = new Result(empty([tokens, n], v.dtype), empty([tokens, n], v.dtype), empty([tokens, n, n], v.dtype),
            empty([tokens, width], v.dtype), empty([tokens], v.dtype), branchInput ? empty([tokens, v.size(1) / n], v.dtype) : null);
        if (v.dtype == ScalarType.Float32) Forward<float>(v, p, n, iterations, epsilon, result, write);
        else Forward<double>(v, p, n, iterations, epsilon, result, write);
        return result;
    }

    // Tokens from which the forward pads φ's columns (one block: below it, at most a block's product is done).
    const int PadFrom = Block;

    // A multiple of two vectors of every width AddProduct runs in (4 to 16 floats, 2 to 8 doubles).
    static int PaddedWidth(int width) => (width + 31) / 32 * 32;

    /// <summary>
    /// Backward of <see cref="Forward"/> given the gradient <paramref name="g"/> of the connection's output
    /// state <c>[N, n·d]</c>, of the branch input <paramref name="gu"/> <c>[N, d]</c> and of H_post (H_res's,
    /// <c>&lt;g_i, x_j&gt;</c>, is computed here): the state gradient <c>[N, n·d]</c> (in g's memory with
    /// <paramref name="overwriteG"/>), with the projection's share <c>g_raw·φᵀ</c>; and the gradient of every parameter,
    /// φ's being <c>vᵀ·g_raw</c>. <paramref name="previous"/> runs on each block of the state gradient once it is final.
    /// </summary>
    public static (Tensor Gx, ManifoldParameters Gradients) Backward(Tensor v, ManifoldParameters p, int n, int iterations,
        Result saved, Tensor g, Tensor gu, Tensor gPost, bool overwriteG = false, StreamMixing.WriteBackwardPass? previous = null)
    {
        var phi = p.Phi;
        var gx = StreamMixing.StateGradientBuffer(v, g, overwriteG);
        var gPhi = empty_like(phi);
        using var phiRows = empty([phi.size(1), phi.size(0) + RowPadding], phi.dtype);   // φᵀ: row c is what g_raw[c] weighs
        phiRows.narrow(1, 0, phi.size(0)).copy_(phi.t());
        var gradients = v.dtype == ScalarType.Float32
            ? Backward<float>(v, phiRows, p, n, iterations, saved, g, gu, gPost, gx, gPhi, previous)
            : Backward<double>(v, phiRows, p, n, iterations, saved, g, gu, gPost, gx, gPhi, previous);
        return (gx, gradients);
    }

    static void Forward<T>(Tensor v, ManifoldParameters p, int n, int iterations, double epsilon, Result result,
        StreamMixing.WritePass? write) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (size, width) = ((int)v.size(1), ManifoldCoefficientKernels.Width(n));
        var (d, padded) = (size / n, PaddedWidth(width));
        // φ with its columns padded to whole product tiles, zeros past the last (multiplied in, never read out). For a
        // few tokens (a generated one) making the copy costs more than the product it speeds up, and where the product's
        // tiles cover φ's columns exactly (n = 4 in 256-bit floats) it gains nothing: φ is read as it is.
        var padPhi = v.size(0) >= PadFrom && !VectorOps.WholeTiles<T>(width);
        var phiStride = padPhi ? padded : width;
        var phiPadded = padPhi ? ArrayPool<T>.Shared.Rent(size * padded) : null;
        if (phiPadded is not null)
        {
            ReadOnlySpan<T> phis = CpuTensor.Span<T>(p.Phi);
            for (var k = 0; k < size; k++)
            {
                phis.Slice(k * width, width).CopyTo(phiPadded.AsSpan(k * padded, width));
                phiPadded.AsSpan(k * padded + width, padded - width).Clear();
            }
        }
        var (eps, inverseSize) = (T.CreateChecked(epsilon), T.One / T.CreateChecked(size));
        CpuTensor.ParallelChunks(v.size(0), Block, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            var (a, count) = ((int)t0, (int)(t1 - t0));
            write?.Tokens(t0, t1);   // the block's state, made here and read from cache below
            ReadOnlySpan<T> vs = CpuTensor.Span<T>(v).Slice(a * size, count * size);
            var projected = CpuTensor.Span<T>(result.Projected).Slice(a * width, count * width);
            var scale = CpuTensor.Span<T>(result.Scale).Slice(a, count);
            // The projection v·φ of the block while it is in cache, instead of a libtorch product that would
            // make one more pass over the state.
            Span<T> raw = stackalloc T[Block * padded];
            raw.Clear();
            ReadOnlySpan<T> phi = phiPadded is null ? CpuTensor.Span<T>(p.Phi) : phiPadded;
            VectorOps.AddProduct(raw, padded, count, vs, size, 1, phi, phiStride, size, phiStride);
            for (var t = 0; t < count; t++)
            {
                var vt = vs.Slice(t * size, size);
                // RMSNorm applied after the product: (v·φ)/rms(v) is the same math and reads v once.
                var s = scale[t] = T.One / T.Sqrt(VectorOps.Dot(vt, vt) * inverseSize + eps);
                VectorOps.Scale(projected.Slice(t * width, width), raw.Slice(t * padded, width), s);
            }
            var pre = CpuTensor.Span<T>(result.Pre).Slice(a * n, count * n);
            ManifoldCoefficientKernels.ForwardBlock(Gates<T>.Of(p), projected, pre,
                CpuTensor.Span<T>(result.Post).Slice(a * n), CpuTensor.Span<T>(result.Res).Slice(a * n * n), count, n, iterations);
            if (result.BranchInput is not { } branchInput) return;
            var us = CpuTensor.Span<T>(branchInput).Slice(a * d, count * d);
            for (var t = 0; t < count; t++) StreamMixing.ReadToken(us.Slice(t * d, d), vs.Slice(t * size, size), pre.Slice(t * n, n), n, d);
        });
        if (phiPadded is not null) ArrayPool<T>.Shared.Return(phiPadded);
    }

    static ManifoldParameters Backward<T>(Tensor v, Tensor phiRows, ManifoldParameters p, int n, int iterations, Result saved,
        Tensor g, Tensor gu, Tensor gPost, Tensor gx, Tensor gPhi, StreamMixing.WriteBackwardPass? previous) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (tokens, size, width) = ((int)v.size(0), (int)v.size(1), ManifoldCoefficientKernels.Width(n));
        var d = size / n;
        var inverseSize = T.One / T.CreateChecked(size);
        var blocks = (tokens + Block - 1) / Block;
        var gateWidth = ManifoldCoefficientKernels.GateGradientWidth(n);
        // Per-block partial sums of the gate gradients, per-range partial sums of φ's (rows of φᵀ), each added
        // in order afterwards: reproducible for any thread count.
        var gatePartials = new T[blocks * gateWidth];
        var blocksEach = Math.Max(1, (blocks + MaxRanges - 1) / MaxRanges);
        var ranges = (blocks + blocksEach - 1) / blocksEach;
        var phiPartials = ArrayPool<T>.Shared.Rent(ranges * width * size);
        CpuTensor.ParallelChunks(ranges, 1, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (range, _) =>
        {
            ReadOnlySpan<T> vs = CpuTensor.Span<T>(v), gs = CpuTensor.Span<T>(g), gus = CpuTensor.Span<T>(gu), phis = CpuTensor.Span<T>(phiRows);
            ReadOnlySpan<T> pre = CpuTensor.Span<T>(saved.Pre), res = CpuTensor.Span<T>(saved.Res), projected = CpuTensor.Span<T>(saved.Projected), scale = CpuTensor.Span<T>(saved.Scale);
            var gxs = CpuTensor.Span<T>(gx);
            var partial = phiPartials.AsSpan((int)range * width * size, width * size);
            partial.Clear();
            Span<T> gPre = stackalloc T[Block * n];
            var buffer = ArrayPool<T>.Shared.Rent(size + Block * (n * n + width));
            Span<T> scratch = buffer.AsSpan(0, size), gRes = buffer.AsSpan(size, Block * n * n), gRaw = buffer.AsSpan(size + Block * n * n, Block * width);
            var first = (int)range * blocksEach;
            for (var block = first; block < Math.Min(blocks, first + blocksEach); block++)
            {
                var a = block * Block;
                var count = Math.Min(Block, tokens - a);
                for (var t = 0; t < count; t++)
                    StreamMixing.MixingGradientsToken(gPre.Slice(t * n, n), gRes.Slice(t * n * n, n * n), gus.Slice((a + t) * d, d),
                        gs.Slice((a + t) * size, size), vs.Slice((a + t) * size, size), n, d);
                ManifoldCoefficientKernels.BackwardBlock(Gates<T>.Of(p), projected.Slice(a * width), pre.Slice(a * n), CpuTensor.Span<T>(saved.Post).Slice(a * n),
                    gPre, CpuTensor.Span<T>(gPost).Slice(a * n), gRes, gRaw, gatePartials.AsSpan(block * gateWidth, gateWidth), count, n, iterations);
                for (var t = 0; t < count; t++)
                {
                    // projected = raw · s with s = (|v|²/nd + ε)^(−1/2): g_raw = g_projected · s, ∂s/∂v = −s³ v / nd,
                    // and Σ g_projected · projected = s · Σ g_projected · raw.
                    var s = scale[a + t];
                    var gt = gRaw.Slice(t * width, width);
                    var rms = -VectorOps.Dot(gt, projected.Slice((a + t) * width, width)) * s * s * inverseSize;
                    VectorOps.Scale(gt, gt, s);
                    var row = (a + t) * size;
                    StreamMixing.StateGradientToken(gxs.Slice(row, size), gs.Slice(row, size), gus.Slice((a + t) * d, d), pre.Slice((a + t) * n, n),
                        res.Slice((a + t) * n * n, n * n), vs.Slice(row, size), rms, n, d, scratch);
                }
                // The two products with φ while the block is in cache: the state gradient's share g_raw·φᵀ, and
                // φ's gradient (kept as rows c of φᵀ) += g_rawᵀ·v.
                VectorOps.AddProduct(gxs[(a * size)..], size, count, gRaw, width, 1, phis, size + RowPadding, width, size);
                VectorOps.AddProduct(partial, size, width, gRaw, 1, width, vs[(a * size)..], size, count, size);
                previous?.Tokens(gx, a, a + count);   // the block's gradient is final and still in cache
            }
            ArrayPool<T>.Shared.Return(buffer);
        });
        // φ's gradient [n·d, width] = (Σ_range partial)ᵀ, by runs of its rows: added as rows, then transposed.
        CpuTensor.ParallelChunks(size, PhiRowsEach, (k0, k1) =>
        {
            var (start, length) = ((int)k0, (int)(k1 - k0));
            var sum = ArrayPool<T>.Shared.Rent(width * length);
            for (var c = 0; c < width; c++)
            {
                var row = sum.AsSpan(c * length, length);
                row.Clear();
                for (var r = 0; r < ranges; r++) VectorOps.AddScaled(row, phiPartials.AsSpan((r * width + c) * size + start, length), T.One);
            }
            var gPhis = CpuTensor.Span<T>(gPhi).Slice(start * width, length * width);
            for (var k = 0; k < length; k++)
                for (var c = 0; c < width; c++) gPhis[k * width + c] = sum[c * length + k];
            ArrayPool<T>.Shared.Return(sum);
        });
        ArrayPool<T>.Shared.Return(phiPartials);
        return ManifoldCoefficientKernels.GateGradients<T>(gatePartials, blocks, n, gPhi);
    }
}
