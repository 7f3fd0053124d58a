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
            for (var h = 0; h < steps; h++)
                Normalize<T, TV, TL>(history.Slice(nn * h, nn), history.Slice(nn * (h + 1), nn), n, columns: h % 2 == 0, log, inverses.Slice(h * n, n));
            LoadPadded<T, TV, TL>(gradOutput, first, lanes, nn, g);
            if (log)
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
                // M0 = exp(L − max): dL = g ⊙ M0 (the shift's own gradient sums to zero).
                for (var k = 0; k < nn; k++) g[k] = TL.Multiply(g[k], m0[k]);
            }
            Store<T, TV, TL>(g, gradLogits, first, lanes, nn);
        }
        ArrayPool<T>.Shared.Return(rented);
    }

    /// <summary>Where line a's entry b is, <c>a·outer + b·inner</c>: lines are columns or rows of a row-major n×n matrix.</summary>
    static (int Outer, int Inner) Strides(int n, bool columns) => columns ? (1, n) : (n, 1);

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
