using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;

namespace Mhc.Kernels;

/// <summary>
/// The cross-entropy of rows of logits in a buffer, and for training the rows overwritten with the gradient, one row
/// at a time: its maximum, then e^(x − max) and their sum in one pass, then the probabilities scaled in place. A row of a
/// large vocabulary (50,257 floats, 200 KB) stays in the core's cache through the three passes; libtorch's logsumexp,
/// exp and scatter would each stream the whole buffer through memory, and logsumexp allocates another as large.
/// </summary>
static class CrossEntropyKernel
{
    /// <summary>
    /// Σ over rows of <c>logsumexp(row) − row[target]</c> for <paramref name="logits"/> <c>[rows, vocab]</c> (contiguous CPU
    /// float32 or float64) and int64 <paramref name="targets"/> <c>[rows]</c>. With a <paramref name="gradientScale"/>
    /// each row is replaced by <c>(softmax(row) − onehot(target)) · gradientScale</c>. Rows are shared among threads in
    /// fixed chunks and their losses summed in order, so the result does not depend on the thread count. The caller checks
    /// that the targets lie in the vocabulary.
    /// </summary>
    public static double Rows(Tensor logits, Tensor targets, double? gradientScale)
    {
        var (rows, vocab) = (logits.size(0), (int)logits.size(1));
        var losses = new double[rows];
        CpuTensor.ParallelChunks(rows, 4, (start, end) =>
        {
            var ids = CpuTensor.Span<long>(targets);
            for (var r = start; r < end; r++)
            {
                losses[r] = logits.dtype == ScalarType.Float32
                    ? Row(CpuTensor.Span<float>(logits).Slice((int)(r * vocab), vocab), (int)ids[(int)r], (float?)gradientScale)
                    : Row(CpuTensor.Span<double>(logits).Slice((int)(r * vocab), vocab), (int)ids[(int)r], gradientScale);
            }
        });
        var total = 0.0;
        foreach (var loss in losses) total += loss;
        return total;
    }

    static double Row<T>(Span<T> row, int target, T? gradientScale) where T : unmanaged, IFloatingPointIeee754<T> =>
        Lanes512<T>.Supported ? Row<T, Vector512<T>, Lanes512<T>>(row, target, gradientScale) : Row<T, Vector<T>, LanesOfVector<T>>(row, target, gradientScale);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static double Row<T, TV, TL>(Span<T> row, int target, T? gradientScale)
        where T : unmanaged, IFloatingPointIeee754<T> where TV : struct where TL : struct, ILanes<TV, T>
    {
        ref var p = ref MemoryMarshal.GetReference(row);
        var (w, length) = ((nuint)TL.Count, (nuint)row.Length);
        var targetLogit = row[target];

        var max = T.NegativeInfinity;
        nuint k = 0;
        if (length >= w)
        {
            var vmax = TL.Load(ref p, 0);
            for (k = w; k + w <= length; k += w) vmax = TL.Max(vmax, TL.Load(ref p, k));
            for (var i = 0; i < TL.Count; i++) max = T.Max(max, Unsafe.Add(ref Unsafe.As<TV, T>(ref vmax), i));
        }
        for (; k < length; k++) max = T.Max(max, Unsafe.Add(ref p, k));

        // e^(x − max) replaces x: the probabilities' numerators, summed on the way.
        var shift = TL.Broadcast(max);
        var vsum = TL.Broadcast(T.Zero);
        for (k = 0; k + w <= length; k += w)
        {
            var e = TL.Exp(TL.Subtract(TL.Load(ref p, k), shift));
            TL.Store(e, ref p, k);
            vsum = TL.Add(vsum, e);
        }
        var sum = TL.Sum(vsum);
        for (; k < length; k++) sum += Unsafe.Add(ref p, k) = T.Exp(Unsafe.Add(ref p, k) - max);
        var loss = double.CreateTruncating(max) + Math.Log(double.CreateTruncating(sum)) - double.CreateTruncating(targetLogit);

        if (gradientScale is { } g)
        {
            var s = g / sum;
            var scale = TL.Broadcast(s);
            for (k = 0; k + w <= length; k += w) TL.Store(TL.Multiply(TL.Load(ref p, k), scale), ref p, k);
            for (; k < length; k++) Unsafe.Add(ref p, k) *= s;
            row[target] -= g;
        }
        return loss;
    }
}
