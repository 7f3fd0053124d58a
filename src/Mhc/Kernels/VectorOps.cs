using System.Runtime.CompilerServices;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Mhc.Kernels;

/// <summary>
/// SIMD building blocks over spans of float or double (Vector&lt;T&gt; width, scalar tail). Lengths are
/// checked once on entry; the loops then load through references, so that no bounds check or spilled
/// span sits in the hot loop (the kernels call these per row of a few hundred values).
/// </summary>
static class VectorOps
{
    /// <summary>Lanes of Vector&lt;T&gt;.</summary>
    public static nuint Width<T>() => (nuint)Vector<T>.Count;

    /// <summary>Σ a_k b_k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static T Dot<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : unmanaged, IFloatingPointIeee754<T>
    {
        b = b[..a.Length];
        ref var pa = ref MemoryMarshal.GetReference(a);
        ref var pb = ref MemoryMarshal.GetReference(b);
        var (w, length) = (Width<T>(), (nuint)a.Length);
        // Four independent sums: one accumulator would wait on the adder's latency every vector.
        Vector<T> acc0 = Vector<T>.Zero, acc1 = Vector<T>.Zero, acc2 = Vector<T>.Zero, acc3 = Vector<T>.Zero;
        nuint k = 0;
        for (; k + 4 * w <= length; k += 4 * w)
        {
            acc0 = MultiplyAdd(Vector.LoadUnsafe(ref pa, k), Vector.LoadUnsafe(ref pb, k), acc0);
            acc1 = MultiplyAdd(Vector.LoadUnsafe(ref pa, k + w), Vector.LoadUnsafe(ref pb, k + w), acc1);
            acc2 = MultiplyAdd(Vector.LoadUnsafe(ref pa, k + 2 * w), Vector.LoadUnsafe(ref pb, k + 2 * w), acc2);
            acc3 = MultiplyAdd(Vector.LoadUnsafe(ref pa, k + 3 * w), Vector.LoadUnsafe(ref pb, k + 3 * w), acc3);
        }
        for (; k + w <= length; k += w) acc0 = MultiplyAdd(Vector.LoadUnsafe(ref pa, k), Vector.LoadUnsafe(ref pb, k), acc0);
        var sum = Vector.Sum((acc0 + acc1) + (acc2 + acc3));
        for (; k < length; k++) sum += Unsafe.Add(ref pa, k) * Unsafe.Add(ref pb, k);
        return sum;
    }

    /// <summary>
    /// <c>result_r = Σ_k a_k rows[r·stride + k]</c> for every r: a's vectors are loaded once per four rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dots<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> rows, int stride, Span<T> result) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var r = 0;
        if (result.Length >= 4) _ = rows[((result.Length / 4 * 4 - 1) * stride)..][..a.Length];   // the last row of the blocks of four is inside
        ref var pa = ref MemoryMarshal.GetReference(a);
        var (w, length) = (Width<T>(), (nuint)a.Length);
        for (; r + 4 <= result.Length; r += 4)
        {
            ref var p0 = ref Unsafe.Add(ref MemoryMarshal.GetReference(rows), r * stride);
            ref var p1 = ref Unsafe.Add(ref p0, stride);
            ref var p2 = ref Unsafe.Add(ref p1, stride);
            ref var p3 = ref Unsafe.Add(ref p2, stride);
            Vector<T> acc0 = Vector<T>.Zero, acc1 = Vector<T>.Zero, acc2 = Vector<T>.Zero, acc3 = Vector<T>.Zero;
            nuint k = 0;
            for (; k + w <= length; k += w)
            {
                var v = Vector.LoadUnsafe(ref pa, k);
                acc0 = MultiplyAdd(v, Vector.LoadUnsafe(ref p0, k), acc0);
                acc1 = MultiplyAdd(v, Vector.LoadUnsafe(ref p1, k), acc1);
                acc2 = MultiplyAdd(v, Vector.LoadUnsafe(ref p2, k), acc2);
                acc3 = MultiplyAdd(v, Vector.LoadUnsafe(ref p3, k), acc3);
            }
            T s0 = Vector.Sum(acc0), s1 = Vector.Sum(acc1), s2 = Vector.Sum(acc2), s3 = Vector.Sum(acc3);
            for (; k < length; k++)
            {
                var v = Unsafe.Add(ref pa, k);
                s0 += v * Unsafe.Add(ref p0, k);
                s1 += v * Unsafe.Add(ref p1, k);
                s2 += v * Unsafe.Add(ref p2, k);
                s3 += v * Unsafe.Add(ref p3, k);
            }
            (result[r], result[r + 1], result[r + 2], result[r + 3]) = (s0, s1, s2, s3);
        }
        for (; r < result.Length; r++) result[r] = Dot(a, rows.Slice(r * stride, a.Length));
    }

    /// <summary>Σ a_k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static T Sum<T>(ReadOnlySpan<T> a) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref var pa = ref MemoryMarshal.GetReference(a);
        var (w, length) = (Width<T>(), (nuint)a.Length);
        Vector<T> acc0 = Vector<T>.Zero, acc1 = Vector<T>.Zero;
        nuint k = 0;
        for (; k + 2 * w <= length; k += 2 * w)
        {
            acc0 += Vector.LoadUnsafe(ref pa, k);
            acc1 += Vector.LoadUnsafe(ref pa, k + w);
        }
        for (; k + w <= length; k += w) acc0 += Vector.LoadUnsafe(ref pa, k);
        var sum = Vector.Sum(acc0 + acc1);
        for (; k < length; k++) sum += Unsafe.Add(ref pa, k);
        return sum;
    }

    /// <summary>dst += s · src.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddScaled<T>(Span<T> dst, ReadOnlySpan<T> src, T s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        src = src[..dst.Length];
        ref var pd = ref MemoryMarshal.GetReference(dst);
        ref var ps = ref MemoryMarshal.GetReference(src);
        var (w, length) = (Width<T>(), (nuint)dst.Length);
        var scale = new Vector<T>(s);
        nuint k = 0;
        for (; k + w <= length; k += w) MultiplyAdd(Vector.LoadUnsafe(ref ps, k), scale, Vector.LoadUnsafe(ref pd, k)).StoreUnsafe(ref pd, k);
        for (; k < length; k++) Unsafe.Add(ref pd, k) += Unsafe.Add(ref ps, k) * s;
    }

    /// <summary>
    /// <c>dst = a·s + Σ_j w_j rows_j</c>: <paramref name="rows"/> holds w.Length rows of dst.Length values one
    /// after another; <paramref name="s"/> may be empty (no a·s term). The rows are taken four at a time, so
    /// each vector of dst is stored once per four rows instead of once per row: the passes over the stream
    /// state are bound by memory traffic. Terms that pad a group of four multiply a row by 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void WeightedRows<T>(Span<T> dst, ReadOnlySpan<T> s, T a, ReadOnlySpan<T> rows, ReadOnlySpan<T> w)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (d, m) = (dst.Length, w.Length);
        if (m == 0 || d == 0)
        {
            if (s.IsEmpty) dst.Clear();
            else Scale(dst, s, a);
            return;
        }
        rows = rows[..(m * d)];
        if (!s.IsEmpty) s = s[..d];
        ref var pd = ref MemoryMarshal.GetReference(dst);
        ref var pr = ref MemoryMarshal.GetReference(rows);
        var (width, length) = (Width<T>(), (nuint)d);
        for (var g = 0; g < m; g += 4)
        {
            // The first group starts from a·s (or 0·row 0), the later ones from what the earlier groups stored.
            ref var start = ref g > 0 ? ref pd : ref s.IsEmpty ? ref pr : ref MemoryMarshal.GetReference(s);
            var startScale = g > 0 ? T.One : s.IsEmpty ? T.Zero : a;
            ref var r0 = ref Unsafe.Add(ref pr, g * d);
            ref var r1 = ref Unsafe.Add(ref pr, Math.Min(g + 1, m - 1) * d);
            ref var r2 = ref Unsafe.Add(ref pr, Math.Min(g + 2, m - 1) * d);
            ref var r3 = ref Unsafe.Add(ref pr, Math.Min(g + 3, m - 1) * d);
            T c0 = w[g], c1 = g + 1 < m ? w[g + 1] : T.Zero, c2 = g + 2 < m ? w[g + 2] : T.Zero, c3 = g + 3 < m ? w[g + 3] : T.Zero;
            var (v0, v1, v2, v3, vs) = (new Vector<T>(c0), new Vector<T>(c1), new Vector<T>(c2), new Vector<T>(c3), new Vector<T>(startScale));
            nuint k = 0;
            for (; k + width <= length; k += width)
            {
                var acc = vs * Vector.LoadUnsafe(ref start, k);
                acc = MultiplyAdd(v0, Vector.LoadUnsafe(ref r0, k), acc);
                acc = MultiplyAdd(v1, Vector.LoadUnsafe(ref r1, k), acc);
                acc = MultiplyAdd(v2, Vector.LoadUnsafe(ref r2, k), acc);
                MultiplyAdd(v3, Vector.LoadUnsafe(ref r3, k), acc).StoreUnsafe(ref pd, k);
            }
            for (; k < length; k++)
                Unsafe.Add(ref pd, k) = startScale * Unsafe.Add(ref start, k) + c0 * Unsafe.Add(ref r0, k) + c1 * Unsafe.Add(ref r1, k)
                    + c2 * Unsafe.Add(ref r2, k) + c3 * Unsafe.Add(ref r3, k);
        }
    }

    /// <summary>dst = s · src.</summary>
    public static void Scale<T>(Span<T> dst, ReadOnlySpan<T> src, T s) where T : unmanaged, IFloatingPointIeee754<T> => Affine(dst, src, s, T.Zero);

    /// <summary>dst = s · src + c.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Affine<T>(Span<T> dst, ReadOnlySpan<T> src, T s, T c) where T : unmanaged, IFloatingPointIeee754<T>
    {
        src = src[..dst.Length];
        ref var pd = ref MemoryMarshal.GetReference(dst);
        ref var ps = ref MemoryMarshal.GetReference(src);
        var (w, length) = (Width<T>(), (nuint)dst.Length);
        var (scale, offset) = (new Vector<T>(s), new Vector<T>(c));
        nuint k = 0;
        for (; k + w <= length; k += w) MultiplyAdd(Vector.LoadUnsafe(ref ps, k), scale, offset).StoreUnsafe(ref pd, k);
        for (; k < length; k++) Unsafe.Add(ref pd, k) = Unsafe.Add(ref ps, k) * s + c;
    }

    /// <summary>values = tanh(values), as <c>sign(z)·(1 − e^(−2|z|)) / (1 + e^(−2|z|))</c>, which cannot overflow.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tanh<T>(Span<T> values) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref var p = ref MemoryMarshal.GetReference(values);
        var (w, length) = (Width<T>(), (nuint)values.Length);
        var minusTwo = new Vector<T>(-(T.One + T.One));
        nuint k = 0;
        for (; k + w <= length; k += w)
        {
            var z = Vector.LoadUnsafe(ref p, k);
            var e = Exp(Vector.Abs(z) * minusTwo);
            var magnitude = (Vector<T>.One - e) / (Vector<T>.One + e);
            Vector.ConditionalSelect(Vector.LessThan(z, Vector<T>.Zero), -magnitude, magnitude).StoreUnsafe(ref p, k);
        }
        for (; k < length; k++) Unsafe.Add(ref p, k) = T.Tanh(Unsafe.Add(ref p, k));
    }

    /// <summary>e^v per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Exp<T>(Vector<T> v) where T : unmanaged =>
        typeof(T) == typeof(float) ? Vector.Exp(v.As<T, float>()).As<float, T>() : Vector.Exp(v.As<T, double>()).As<double, T>();

    /// <summary>a·b + c, fused where the hardware can.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> MultiplyAdd<T>(Vector<T> a, Vector<T> b, Vector<T> c) where T : unmanaged =>
        typeof(T) == typeof(float) ? Vector.FusedMultiplyAdd(a.As<T, float>(), b.As<T, float>(), c.As<T, float>()).As<float, T>()
            : Vector.FusedMultiplyAdd(a.As<T, double>(), b.As<T, double>(), c.As<T, double>()).As<double, T>();
}
