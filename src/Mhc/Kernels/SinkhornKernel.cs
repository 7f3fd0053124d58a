using System.Numerics;
using System.Runtime.CompilerServices;

namespace Mhc.Kernels;

/// <summary>
/// Sinkhorn-Knopp for many small n×n matrices at once, forward and backward, for the fused path. Same
/// algorithm as <see cref="Sinkhorn.Project(TorchSharp.torch.Tensor, int)"/>: exp(L − max L), then
/// columns then rows, t times. Each SIMD lane holds a different matrix (one token), so every step is
/// plain vertical arithmetic. A group of lanes containing a matrix whose logit spread would underflow
/// exp is iterated in the log domain. The backward recomputes the iterations instead of keeping them
/// from the forward, then applies the exact chain rule of every normalisation in reverse.
/// </summary>
static class SinkhornKernel
{
    /// <summary>Vectors of scratch that <see cref="Forward{T}"/> and <see cref="Backward{T}"/> need.</summary>
    public static int ScratchSize(int n, int iterations) => n * n * (2 * iterations + 2) + 2 * iterations * n;

    /// <summary>Projects <paramref name="count"/> row-major n×n matrices from <paramref name="logits"/> into <paramref name="output"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward<T>(ReadOnlySpan<T> logits, Span<T> output, int count, int n, int iterations, Span<Vector<T>> scratch)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var nn = n * n;
        var m = scratch[..nn];
        for (var first = 0; first < count; first += Vector<T>.Count)
        {
            var lanes = Math.Min(Vector<T>.Count, count - first);
            var log = LoadShifted(logits, first, lanes, nn, m);
            if (!log)
                for (var k = 0; k < nn; k++) m[k] = VectorOps.Exp(m[k]);
            for (var h = 0; h < 2 * iterations; h++) Normalize(m, m, n, columns: h % 2 == 0, log, inverses: []);
            if (log)
                for (var k = 0; k < nn; k++) m[k] = VectorOps.Exp(m[k]);
            Store(m, output, first, lanes, nn);
        }
    }

    /// <summary>Gradient of Σ gOut ⊙ Sinkhorn(L) with respect to L for <paramref name="count"/> matrices.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Backward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<T> gradOutput, Span<T> gradLogits, int count, int n, int iterations, Span<Vector<T>> scratch)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var nn = n * n;
        var steps = 2 * iterations;
        // history[h]: matrix after half-step h (h = 0: M0, or log M0); divisors[h]: that step's 1/sums (exp domain).
        var history = scratch[..(nn * (steps + 1))];
        var divisors = scratch.Slice(nn * (steps + 1), steps * n);
        var g = scratch.Slice(nn * (steps + 1) + steps * n, nn);
        for (var first = 0; first < count; first += Vector<T>.Count)
        {
            var lanes = Math.Min(Vector<T>.Count, count - first);
            var m0 = history[..nn];
            var log = LoadShifted(logits, first, lanes, nn, m0);
            if (!log)
                for (var k = 0; k < nn; k++) m0[k] = VectorOps.Exp(m0[k]);
            for (var h = 0; h < steps; h++)
                Normalize(history.Slice(nn * h, nn), history.Slice(nn * (h + 1), nn), n, columns: h % 2 == 0, log, divisors.Slice(h * n, n));
            LoadPadded(gradOutput, first, lanes, nn, g);
            if (log)
            {
                // Output = exp(log M_T): d/d log M_T = g ⊙ output.
                var last = history.Slice(nn * steps, nn);
                for (var k = 0; k < nn; k++) g[k] *= VectorOps.Exp(last[k]);
                for (var h = steps - 1; h >= 0; h--)
                {
                    // log M_{h+1} = log M_h − lse(log M_h): g_h = g − softmax · Σ g along the normalised axis.
                    var after = history.Slice(nn * (h + 1), nn);
                    var columns = h % 2 == 0;
                    for (var a = 0; a < n; a++)
                    {
                        var sum = Vector<T>.Zero;
                        for (var b = 0; b < n; b++) sum += g[Index(a, b, n, columns)];
                        for (var b = 0; b < n; b++)
                        {
                            var k = Index(a, b, n, columns);
                            g[k] -= VectorOps.Exp(after[k]) * sum;
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
                    var columns = h % 2 == 0;
                    for (var a = 0; a < n; a++)
                    {
                        var dot = Vector<T>.Zero;
                        for (var b = 0; b < n; b++)
                        {
                            var k = Index(a, b, n, columns);
                            dot += g[k] * after[k];
                        }
                        var inverse = divisors[h * n + a];
                        for (var b = 0; b < n; b++)
                        {
                            var k = Index(a, b, n, columns);
                            g[k] = (g[k] - dot) * inverse;
                        }
                    }
                }
                // M0 = exp(L − max): dL = g ⊙ M0 (the shift's own gradient sums to zero).
                for (var k = 0; k < nn; k++) g[k] *= m0[k];
            }
            Store(g, gradLogits, first, lanes, nn);
        }
    }

    // Vector.Exp / Vector.Log exist for float and double only; the JIT removes the type test.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector<T> Log<T>(Vector<T> v) where T : unmanaged =>
        typeof(T) == typeof(float) ? Vector.Log(v.As<T, float>()).As<float, T>() : Vector.Log(v.As<T, double>()).As<double, T>();

    /// <summary>Entry b of row (rows) or column (columns) a.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Index(int a, int b, int n, bool columns) => columns ? b * n + a : a * n + b;

    /// <summary>
    /// Normalises every column (or row) of <paramref name="source"/> into <paramref name="target"/> (may be the
    /// same span). Exp domain: divides by the sum and records 1/sum; log domain: subtracts the logsumexp.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Normalize<T>(Span<Vector<T>> source, Span<Vector<T>> target, int n, bool columns, bool log, Span<Vector<T>> inverses)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (var a = 0; a < n; a++)
        {
            if (log)
            {
                var peak = source[Index(a, 0, n, columns)];
                for (var b = 1; b < n; b++) peak = Vector.Max(peak, source[Index(a, b, n, columns)]);
                var total = Vector<T>.Zero;
                for (var b = 0; b < n; b++) total += VectorOps.Exp(source[Index(a, b, n, columns)] - peak);
                var lse = peak + Log(total);
                for (var b = 0; b < n; b++)
                {
                    var k = Index(a, b, n, columns);
                    target[k] = source[k] - lse;
                }
            }
            else
            {
                var sum = Vector<T>.Zero;
                for (var b = 0; b < n; b++) sum += source[Index(a, b, n, columns)];
                // One division per row or column, not per entry.
                var inverse = Vector<T>.One / sum;
                for (var b = 0; b < n; b++)
                {
                    var k = Index(a, b, n, columns);
                    target[k] = source[k] * inverse;
                }
                if (!inverses.IsEmpty) inverses[a] = inverse;
            }
        }
    }

    /// <summary>
    /// Loads matrices first..first+lanes into lanes (padding lanes get zeros), shifts each by its maximum,
    /// and tells whether any of them has a spread that needs the log domain.
    /// </summary>
    static bool LoadShifted<T>(ReadOnlySpan<T> logits, int first, int lanes, int nn, Span<Vector<T>> m)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        LoadPadded(logits, first, lanes, nn, m);
        var max = m[0];
        var min = m[0];
        for (var k = 1; k < nn; k++)
        {
            max = Vector.Max(max, m[k]);
            min = Vector.Min(min, m[k]);
        }
        for (var k = 0; k < nn; k++) m[k] -= max;
        var safe = new Vector<T>(T.CreateTruncating(Sinkhorn.SafeSpread(typeof(T) == typeof(double))));
        return Vector.GreaterThanAny(max - min, safe);
    }

    static void LoadPadded<T>(ReadOnlySpan<T> source, int first, int lanes, int nn, Span<Vector<T>> target)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> lane = stackalloc T[Vector<T>.Count];
        for (var k = 0; k < nn; k++)
        {
            lane.Clear();
            for (var l = 0; l < lanes; l++) lane[l] = source[(first + l) * nn + k];
            target[k] = new Vector<T>(lane);
        }
    }

    static void Store<T>(Span<Vector<T>> source, Span<T> target, int first, int lanes, int nn)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (var k = 0; k < nn; k++)
            for (var l = 0; l < lanes; l++) target[(first + l) * nn + k] = source[k][l];
    }
}
