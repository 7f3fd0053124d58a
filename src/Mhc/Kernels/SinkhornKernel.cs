using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Mhc.Kernels;

/// <summary>
/// Sinkhorn-Knopp for many small n×n matrices at once, forward and backward, for the fused path. Same
/// algorithm as <see cref="Sinkhorn.Project(TorchSharp.torch.Tensor, int)"/>: exp(L − max L), then
/// columns then rows, t times. Each SIMD lane holds a different matrix (one token), so every step is
/// plain vertical arithmetic, in 512-bit vectors where the machine has them (<see cref="ILanes{TVector, T}"/>:
/// the iterations are bound by their divisions, and a wider vector does twice the matrices per division).
/// A group of lanes containing a matrix whose logit spread would underflow exp is iterated in the log
/// domain. The backward recomputes the iterations instead of keeping them from the forward, then applies
/// the exact chain rule of every normalisation in reverse.
/// </summary>
static class SinkhornKernel
{
    /// <summary>Projects <paramref name="count"/> row-major n×n matrices from <paramref name="logits"/> into <paramref name="output"/>.</summary>
    public static void Forward<T>(ReadOnlySpan<T> logits, Span<T> output, int count, int n, int iterations)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Lanes512<T>.Supported) Forward<T, Vector512<T>, Lanes512<T>>(logits, output, count, n, iterations);
        else Forward<T, Vector<T>, LanesOfVector<T>>(logits, output, count, n, iterations);
    }

    /// <summary>Gradient of Σ gOut ⊙ Sinkhorn(L) with respect to L for <paramref name="count"/> matrices.</summary>
    public static void Backward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<T> gradOutput, Span<T> gradLogits, int count, int n, int iterations)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Lanes512<T>.Supported) Backward<T, Vector512<T>, Lanes512<T>>(logits, gradOutput, gradLogits, count, n, iterations);
        else Backward<T, Vector<T>, LanesOfVector<T>>(logits, gradOutput, gradLogits, count, n, iterations);
    }

    /// <summary><see cref="Forward{T}"/> in vectors of type TV.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Forward<T, TV, TL>(ReadOnlySpan<T> logits, Span<T> output, int count, int n, int iterations)
        where T : unmanaged, IFloatingPointIeee754<T> where TV : struct where TL : struct, ILanes<TV, T>
    {
        var nn = n * n;
        var rented = ArrayPool<T>.Shared.Rent(nn * TL.Count);
        var m = MemoryMarshal.Cast<T, TV>(rented.AsSpan(0, nn * TL.Count));
        for (var first = 0; first < count; first += TL.Count)
        {
            var lanes = Math.Min(TL.Count, count - first);
            var log = LoadShifted<T, TV, TL>(logits, first, lanes, nn, m);
            if (!log)
                for (var k = 0; k < nn; k++) m[k] = TL.Exp(m[k]);
            if (n == 4 && !log) Iterate4<T, TV, TL>(m, iterations, history: [], inverses: []);
            else
                for (var h = 0; h < 2 * iterations; h++) Normalize<T, TV, TL>(m, m, n, columns: h % 2 == 0, log, inverses: []);
            if (log)
                for (var k = 0; k < nn; k++) m[k] = TL.Exp(m[k]);
            Store<T, TV, TL>(m, output, first, lanes, nn);
        }
        ArrayPool<T>.Shared.Return(rented);
    }

    /// <summary><see cref="Backward{T}"/> in vectors of type TV.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Backward<T, TV, TL>(ReadOnlySpan<T> logits, ReadOnlySpan<T> gradOutput, Span<T> gradLogits, int count, int n, int iterations)
        where T : unmanaged, IFloatingPointIeee754<T> where TV : struct where TL : struct, ILanes<TV, T>
    {
        var nn = n * n;
        var steps = 2 * iterations;
        var vectors = nn * (steps + 2) + steps * n;
        var rented = ArrayPool<T>.Shared.Rent(vectors * TL.Count);
        var scratch = MemoryMarshal.Cast<T, TV>(rented.AsSpan(0, vectors * TL.Count));
        // history[h]: matrix after half-step h (h = 0: M0, or log M0); inverses[h]: that step's 1/sums (exp domain).
        var history = scratch[..(nn * (steps + 1))];
        var inverses = scratch.Slice(nn * (steps + 1), steps * n);
        var g = scratch.Slice(nn * (steps + 1) + steps * n, nn);
        for (var first = 0; first < count; first += TL.Count)
        {
            var lanes = Math.Min(TL.Count, count - first);
            var m0 = history[..nn];
            var log = LoadShifted<T, TV, TL>(logits, first, lanes, nn, m0);
            if (!log)
                for (var k = 0; k < nn; k++) m0[k] = TL.Exp(m0[k]);
            if (n == 4 && !log) Iterate4<T, TV, TL>(m0, iterations, history, inverses);
            else
                for (var h = 0; h < steps; h++)
                    Normalize<T, TV, TL>(history.Slice(nn * h, nn), history.Slice(nn * (h + 1), nn), n, columns: h % 2 == 0, log, inverses.Slice(h * n, n));
            LoadPadded<T, TV, TL>(gradOutput, first, lanes, nn, g);
            if (n == 4 && !log) Reverse4<T, TV, TL>(g, history, inverses, iterations);
            else if (log)
            {
                // Output = exp(log M_T): d/d log M_T = g ⊙ output.
                var last = history.Slice(nn * steps, nn);
                for (var k = 0; k < nn; k++) g[k] = TL.Multiply(g[k], TL.Exp(last[k]));
                for (var h = steps - 1; h >= 0; h--)
                {
                    // log M_{h+1} = log M_h − lse(log M_h): g_h = g − softmax · Σ g along the normalised axis.
                    var after = history.Slice(nn * (h + 1), nn);
                    var (outer, inner) = Strides(n, columns: h % 2 == 0);
                    for (var a = 0; a < n; a++)
                    {
                        var sum = g[a * outer];
                        for (var b = 1; b < n; b++) sum = TL.Add(sum, g[a * outer + b * inner]);
                        for (var b = 0; b < n; b++)
                        {
                            var k = a * outer + b * inner;
                            g[k] = TL.Subtract(g[k], TL.Multiply(TL.Exp(after[k]), sum));
                        }
                    }
                }
            }
            else
            {
                for (var h = steps - 1; h >= 0; h--)
                {
                    // M_{h+1} = M_h / s along the normalised axis: g_h = (g − Σ g ⊙ M_{h+1}) / s.
                    var after = history.Slice(nn * (h + 1), nn);
                    var (outer, inner) = Strides(n, columns: h % 2 == 0);
                    for (var a = 0; a < n; a++)
                    {
                        var dot = TL.Multiply(g[a * outer], after[a * outer]);
                        for (var b = 1; b < n; b++) dot = TL.MultiplyAdd(g[a * outer + b * inner], after[a * outer + b * inner], dot);
                        var inverse = inverses[h * n + a];
                        for (var b = 0; b < n; b++)
                        {
                            var k = a * outer + b * inner;
                            g[k] = TL.Multiply(TL.Subtract(g[k], dot), inverse);
                        }
                    }
                }
            }
            // Exp domain: M0 = exp(L − max), so dL = g ⊙ M0 (the shift's own gradient sums to zero).
            if (!log)
                for (var k = 0; k < nn; k++) g[k] = TL.Multiply(g[k], m0[k]);
            Store<T, TV, TL>(g, gradLogits, first, lanes, nn);
        }
        ArrayPool<T>.Shared.Return(rented);
    }

    /// <summary>Where line a's entry b is, <c>a·outer + b·inner</c>: lines are columns or rows of a row-major n×n matrix.</summary>
    static (int Outer, int Inner) Strides(int n, bool columns) => columns ? (1, n) : (n, 1);

    /// <summary>
    /// The exp-domain iterations of <see cref="Normalize{T, TV, TL}"/> for n = 4 (the papers' and our default), with the
    /// 16 entries held in locals instead of indexed through the span at every step: the same operations in the same
    /// order as the general path (identical results), 1.3–1.6 times faster (with <see cref="Reverse4{T, TV, TL}"/>, the
    /// backward about 2 times), the loop then bound by the latency of its sums and divisions, not by index arithmetic.
    /// With <paramref name="history"/> (the backward's), the matrix after every half-step goes to its slot h + 1 and
    /// the half-step's inverse sums to <paramref name="inverses"/>, as Normalize records them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Iterate4<T, TV, TL>(Span<TV> m, int iterations, Span<TV> history, Span<TV> inverses)
        where T : unmanaged, IFloatingPointIeee754<T> where TL : struct, ILanes<TV, T>
    {
        var record = !history.IsEmpty;
        m = m[..16];
        TV m00 = m[0], m01 = m[1], m02 = m[2], m03 = m[3], m10 = m[4], m11 = m[5], m12 = m[6], m13 = m[7];
        TV m20 = m[8], m21 = m[9], m22 = m[10], m23 = m[11], m30 = m[12], m31 = m[13], m32 = m[14], m33 = m[15];
        var one = TL.Broadcast(T.One);
        for (var i = 0; i < iterations; i++)
        {
            // Columns, then rows (disjoint lines, so one after another is the same as all at once).
            (m00, m10, m20, m30, var c0) = Normalized<T, TV, TL>(m00, m10, m20, m30, one);
            (m01, m11, m21, m31, var c1) = Normalized<T, TV, TL>(m01, m11, m21, m31, one);
            (m02, m12, m22, m32, var c2) = Normalized<T, TV, TL>(m02, m12, m22, m32, one);
            (m03, m13, m23, m33, var c3) = Normalized<T, TV, TL>(m03, m13, m23, m33, one);
            if (record) Record(history, inverses, 2 * i, c0, c1, c2, c3, m00, m01, m02, m03, m10, m11, m12, m13, m20, m21, m22, m23, m30, m31, m32, m33);
            (m00, m01, m02, m03, var r0) = Normalized<T, TV, TL>(m00, m01, m02, m03, one);
            (m10, m11, m12, m13, var r1) = Normalized<T, TV, TL>(m10, m11, m12, m13, one);
            (m20, m21, m22, m23, var r2) = Normalized<T, TV, TL>(m20, m21, m22, m23, one);
            (m30, m31, m32, m33, var r3) = Normalized<T, TV, TL>(m30, m31, m32, m33, one);
            if (record) Record(history, inverses, 2 * i + 1, r0, r1, r2, r3, m00, m01, m02, m03, m10, m11, m12, m13, m20, m21, m22, m23, m30, m31, m32, m33);
        }
        if (record) return;   // m is the backward's M0, still needed; the result is history's last slot
        (m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]) = (m00, m01, m02, m03, m10, m11, m12, m13);
        (m[8], m[9], m[10], m[11], m[12], m[13], m[14], m[15]) = (m20, m21, m22, m23, m30, m31, m32, m33);
    }

    // One line of Iterate4 divided by its sum, added from its first entry on as Normalize does (one division, four
    // products), and the inverse of that sum.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static (TV, TV, TV, TV, TV) Normalized<T, TV, TL>(TV a, TV b, TV c, TV d, TV one)
        where T : unmanaged, IFloatingPointIeee754<T> where TL : struct, ILanes<TV, T>
    {
        var inverse = TL.Divide(one, TL.Add(TL.Add(TL.Add(a, b), c), d));
        return (TL.Multiply(a, inverse), TL.Multiply(b, inverse), TL.Multiply(c, inverse), TL.Multiply(d, inverse), inverse);
    }

    // Half-step h's inverse sums and the matrix after it, where the backward's general path keeps them.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Record<TV>(Span<TV> history, Span<TV> inverses, int h, TV i0, TV i1, TV i2, TV i3,
        TV m00, TV m01, TV m02, TV m03, TV m10, TV m11, TV m12, TV m13, TV m20, TV m21, TV m22, TV m23, TV m30, TV m31, TV m32, TV m33)
    {
        var inverse = inverses.Slice(4 * h, 4);
        (inverse[0], inverse[1], inverse[2], inverse[3]) = (i0, i1, i2, i3);
        var after = history.Slice(16 * (h + 1), 16);
        (after[0], after[1], after[2], after[3], after[4], after[5], after[6], after[7]) = (m00, m01, m02, m03, m10, m11, m12, m13);
        (after[8], after[9], after[10], after[11], after[12], after[13], after[14], after[15]) = (m20, m21, m22, m23, m30, m31, m32, m33);
    }

    /// <summary>
    /// The exp-domain reverse pass of the backward for n = 4: for every half-step from the last, each line's
    /// <c>g ← (g − Σ g ⊙ M_{h+1}) / s</c>, with g in locals; the same operations in the same order as the general path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Reverse4<T, TV, TL>(Span<TV> g, Span<TV> history, Span<TV> inverses, int iterations)
        where T : unmanaged, IFloatingPointIeee754<T> where TL : struct, ILanes<TV, T>
    {
        g = g[..16];
        TV g00 = g[0], g01 = g[1], g02 = g[2], g03 = g[3], g10 = g[4], g11 = g[5], g12 = g[6], g13 = g[7];
        TV g20 = g[8], g21 = g[9], g22 = g[10], g23 = g[11], g30 = g[12], g31 = g[13], g32 = g[14], g33 = g[15];
        for (var i = iterations - 1; i >= 0; i--)
        {
            // The rows' half-step (2i + 1), then the columns' (2i).
            var a = history.Slice(16 * (2 * i + 2), 16);
            var s = inverses.Slice(4 * (2 * i + 1), 4);
            (g00, g01, g02, g03) = Line<T, TV, TL>(g00, g01, g02, g03, a[0], a[1], a[2], a[3], s[0]);
            (g10, g11, g12, g13) = Line<T, TV, TL>(g10, g11, g12, g13, a[4], a[5], a[6], a[7], s[1]);
            (g20, g21, g22, g23) = Line<T, TV, TL>(g20, g21, g22, g23, a[8], a[9], a[10], a[11], s[2]);
            (g30, g31, g32, g33) = Line<T, TV, TL>(g30, g31, g32, g33, a[12], a[13], a[14], a[15], s[3]);
            a = history.Slice(16 * (2 * i + 1), 16);
            s = inverses.Slice(4 * 2 * i, 4);
            (g00, g10, g20, g30) = Line<T, TV, TL>(g00, g10, g20, g30, a[0], a[4], a[8], a[12], s[0]);
            (g01, g11, g21, g31) = Line<T, TV, TL>(g01, g11, g21, g31, a[1], a[5], a[9], a[13], s[1]);
            (g02, g12, g22, g32) = Line<T, TV, TL>(g02, g12, g22, g32, a[2], a[6], a[10], a[14], s[2]);
            (g03, g13, g23, g33) = Line<T, TV, TL>(g03, g13, g23, g33, a[3], a[7], a[11], a[15], s[3]);
        }
        (g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]) = (g00, g01, g02, g03, g10, g11, g12, g13);
        (g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]) = (g20, g21, g22, g23, g30, g31, g32, g33);
    }

    // One line of Reverse4: (g_b − Σ_b g_b·after_b) · inverse for its four entries.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static (TV, TV, TV, TV) Line<T, TV, TL>(TV g0, TV g1, TV g2, TV g3, TV a0, TV a1, TV a2, TV a3, TV inverse)
        where T : unmanaged, IFloatingPointIeee754<T> where TL : struct, ILanes<TV, T>
    {
        var dot = TL.MultiplyAdd(g3, a3, TL.MultiplyAdd(g2, a2, TL.MultiplyAdd(g1, a1, TL.Multiply(g0, a0))));
        return (TL.Multiply(TL.Subtract(g0, dot), inverse), TL.Multiply(TL.Subtract(g1, dot), inverse),
            TL.Multiply(TL.Subtract(g2, dot), inverse), TL.Multiply(TL.Subtract(g3, dot), inverse));
    }

    /// <summary>
    /// Normalises every column (or row) of <paramref name="source"/> into <paramref name="target"/> (may be the
    /// same span). Exp domain: divides by the sum and records 1/sum; log domain: subtracts the logsumexp.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Normalize<T, TV, TL>(Span<TV> source, Span<TV> target, int n, bool columns, bool log, Span<TV> inverses)
        where T : unmanaged, IFloatingPointIeee754<T> where TL : struct, ILanes<TV, T>
    {
        var (outer, inner) = Strides(n, columns);
        for (var a = 0; a < n; a++)
        {
            var line = a * outer;
            if (log)
            {
                var peak = source[line];
                for (var b = 1; b < n; b++) peak = TL.Max(peak, source[line + b * inner]);
                var total = TL.Exp(TL.Subtract(source[line], peak));
                for (var b = 1; b < n; b++) total = TL.Add(total, TL.Exp(TL.Subtract(source[line + b * inner], peak)));
                var lse = TL.Add(peak, TL.Log(total));
                for (var b = 0; b < n; b++) target[line + b * inner] = TL.Subtract(source[line + b * inner], lse);
            }
            else
            {
                var sum = source[line];
                for (var b = 1; b < n; b++) sum = TL.Add(sum, source[line + b * inner]);
                // One division per row or column, not per entry.
                var inverse = TL.Divide(TL.Broadcast(T.One), sum);
                for (var b = 0; b < n; b++) target[line + b * inner] = TL.Multiply(source[line + b * inner], inverse);
                if (!inverses.IsEmpty) inverses[a] = inverse;
            }
        }
    }

    /// <summary>
    /// Loads matrices first..first+lanes into lanes (padding lanes get zeros), shifts each by its maximum,
    /// and tells whether any of them has a spread that needs the log domain.
    /// </summary>
    static bool LoadShifted<T, TV, TL>(ReadOnlySpan<T> logits, int first, int lanes, int nn, Span<TV> m)
        where T : unmanaged, IFloatingPointIeee754<T> where TL : struct, ILanes<TV, T>
    {
        LoadPadded<T, TV, TL>(logits, first, lanes, nn, m);
        var max = m[0];
        var min = m[0];
        for (var k = 1; k < nn; k++)
        {
            max = TL.Max(max, m[k]);
            min = TL.Min(min, m[k]);
        }
        for (var k = 0; k < nn; k++) m[k] = TL.Subtract(m[k], max);
        var safe = TL.Broadcast(T.CreateTruncating(Sinkhorn.SafeSpread(typeof(T) == typeof(double))));
        return TL.AnyGreaterThan(TL.Subtract(max, min), safe);
    }

    static void LoadPadded<T, TV, TL>(ReadOnlySpan<T> source, int first, int lanes, int nn, Span<TV> target)
        where T : unmanaged where TL : struct, ILanes<TV, T>
    {
        Span<T> lane = stackalloc T[TL.Count];
        for (var k = 0; k < nn; k++)
        {
            lane.Clear();
            for (var l = 0; l < lanes; l++) lane[l] = source[(first + l) * nn + k];
            target[k] = TL.Load(ref lane[0], 0);
        }
    }

    static void Store<T, TV, TL>(Span<TV> source, Span<T> target, int first, int lanes, int nn)
        where T : unmanaged where TL : struct, ILanes<TV, T>
    {
        Span<T> lane = stackalloc T[TL.Count];
        for (var k = 0; k < nn; k++)
        {
            TL.Store(source[k], ref lane[0], 0);
            for (var l = 0; l < lanes; l++) target[(first + l) * nn + k] = lane[l];
        }
    }
}
