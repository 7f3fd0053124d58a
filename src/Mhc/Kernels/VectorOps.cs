using System.Runtime.CompilerServices;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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

    /// <summary>
    /// <c>result[r·xCount + j] = &lt;a_r, x_j&gt;</c> for <paramref name="aCount"/> rows of a and
    /// <paramref name="xCount"/> rows of x (each <paramref name="length"/> values, at their strides). Tiles of
    /// four by four rows keep 16 sums in registers, so each vector loaded serves four products instead of one;
    /// in 512-bit vectors where the machine has them.
    /// </summary>
    public static void CrossDots<T>(ReadOnlySpan<T> a, int aStride, int aCount, ReadOnlySpan<T> x, int xStride, int xCount, int length, Span<T> result)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Lanes512<T>.Supported) CrossDots<T, Vector512<T>, Lanes512<T>>(a, aStride, aCount, x, xStride, xCount, length, result);
        else CrossDots<T, Vector<T>, LanesOfVector<T>>(a, aStride, aCount, x, xStride, xCount, length, result);
    }

    /// <summary><see cref="CrossDots{T}"/> in vectors of type TV.</summary>
    internal static void CrossDots<T, TV, TL>(ReadOnlySpan<T> a, int aStride, int aCount, ReadOnlySpan<T> x, int xStride, int xCount, int length, Span<T> result)
        where T : unmanaged, IFloatingPointIeee754<T> where TL : struct, ILanes<TV, T>
    {
        if (aCount == 0 || xCount == 0) return;
        a = a[..((aCount - 1) * aStride + length)];
        x = x[..((xCount - 1) * xStride + length)];
        result = result[..(aCount * xCount)];
        Span<T> sums = stackalloc T[16];
        for (var r = 0; r < aCount; r += 4)
            for (var j = 0; j < xCount; j += 4)
            {
                // A tile past the last row of a or x repeats it: the copies compute the same sums, written once.
                var (lastA, lastX) = (Math.Min(4, aCount - r) - 1, Math.Min(4, xCount - j) - 1);
                CrossDotsTile<T, TV, TL>(ref Unsafe.AsRef(in a[r * aStride]), aStride, lastA, ref Unsafe.AsRef(in x[j * xStride]), xStride, lastX, length, sums);
                for (var i = 0; i <= lastA; i++)
                    for (var c = 0; c <= lastX; c++) result[(r + i) * xCount + j + c] = sums[i * 4 + c];
            }
    }

    // A 4 × 4 tile of CrossDots, sums[i·4 + j] = <a_min(i, lastA), x_min(j, lastX)>.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void CrossDotsTile<T, TV, TL>(ref T a, nint aStride, int lastA, ref T x, nint xStride, int lastX, int length, Span<T> sums)
        where T : unmanaged, IFloatingPointIeee754<T> where TL : struct, ILanes<TV, T>
    {
        var w = TL.Count;
        ref var a1 = ref Unsafe.Add(ref a, Math.Min(1, lastA) * aStride);
        ref var a2 = ref Unsafe.Add(ref a, Math.Min(2, lastA) * aStride);
        ref var a3 = ref Unsafe.Add(ref a, Math.Min(3, lastA) * aStride);
        ref var x1 = ref Unsafe.Add(ref x, Math.Min(1, lastX) * xStride);
        ref var x2 = ref Unsafe.Add(ref x, Math.Min(2, lastX) * xStride);
        ref var x3 = ref Unsafe.Add(ref x, Math.Min(3, lastX) * xStride);
        var zero = TL.Broadcast(T.Zero);
        TV s00 = zero, s01 = zero, s02 = zero, s03 = zero, s10 = zero, s11 = zero, s12 = zero, s13 = zero;
        TV s20 = zero, s21 = zero, s22 = zero, s23 = zero, s30 = zero, s31 = zero, s32 = zero, s33 = zero;
        var k = 0;
        for (; k + w <= length; k += w)
        {
            var (i, v0, v1, v2, v3) = ((nuint)k, TL.Load(ref x, (nuint)k), TL.Load(ref x1, (nuint)k), TL.Load(ref x2, (nuint)k), TL.Load(ref x3, (nuint)k));
            var u = TL.Load(ref a, i);
            s00 = TL.MultiplyAdd(u, v0, s00); s01 = TL.MultiplyAdd(u, v1, s01); s02 = TL.MultiplyAdd(u, v2, s02); s03 = TL.MultiplyAdd(u, v3, s03);
            u = TL.Load(ref a1, i);
            s10 = TL.MultiplyAdd(u, v0, s10); s11 = TL.MultiplyAdd(u, v1, s11); s12 = TL.MultiplyAdd(u, v2, s12); s13 = TL.MultiplyAdd(u, v3, s13);
            u = TL.Load(ref a2, i);
            s20 = TL.MultiplyAdd(u, v0, s20); s21 = TL.MultiplyAdd(u, v1, s21); s22 = TL.MultiplyAdd(u, v2, s22); s23 = TL.MultiplyAdd(u, v3, s23);
            u = TL.Load(ref a3, i);
            s30 = TL.MultiplyAdd(u, v0, s30); s31 = TL.MultiplyAdd(u, v1, s31); s32 = TL.MultiplyAdd(u, v2, s32); s33 = TL.MultiplyAdd(u, v3, s33);
        }
        (sums[0], sums[1], sums[2], sums[3]) = (TL.Sum(s00), TL.Sum(s01), TL.Sum(s02), TL.Sum(s03));
        (sums[4], sums[5], sums[6], sums[7]) = (TL.Sum(s10), TL.Sum(s11), TL.Sum(s12), TL.Sum(s13));
        (sums[8], sums[9], sums[10], sums[11]) = (TL.Sum(s20), TL.Sum(s21), TL.Sum(s22), TL.Sum(s23));
        (sums[12], sums[13], sums[14], sums[15]) = (TL.Sum(s30), TL.Sum(s31), TL.Sum(s32), TL.Sum(s33));
        for (; k < length; k++)
            for (var i = 0; i < 4; i++)
                for (var j = 0; j < 4; j++)
                    sums[i * 4 + j] += Unsafe.Add(ref a, Math.Min(i, lastA) * aStride + k) * Unsafe.Add(ref x, Math.Min(j, lastX) * xStride + k);
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

    /// <summary>
    /// <c>c_r += Σ_j a[r·aRow + j·aColumn] · b_j</c> for the <paramref name="rows"/> rows of c (at
    /// <paramref name="cStride"/>) and the <paramref name="depth"/> rows of b (at <paramref name="bStride"/>), each
    /// row <paramref name="length"/> values: a small matrix product added into c, compute-bound, so in 512-bit
    /// vectors where the machine has them. Tiles of eight rows of c (four without AVX-512) by two vectors stay
    /// in registers over the whole depth: each vector of b loaded serves every row of the tile. Without AVX-512, rows of
    /// exactly three vectors (mHC's 24 projection columns at n = 4 in floats) go in tiles of four rows by three vectors.
    /// </summary>
    public static void AddProduct<T>(Span<T> c, int cStride, int rows, ReadOnlySpan<T> a, int aRow, int aColumn,
        ReadOnlySpan<T> b, int bStride, int depth, int length) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Lanes512<T>.Supported) AddProduct<T, Vector512<T>, Lanes512<T>>(c, cStride, rows, a, aRow, aColumn, b, bStride, depth, length);
        else AddProduct<T, Vector<T>, LanesOfVector<T>>(c, cStride, rows, a, aRow, aColumn, b, bStride, depth, length);
    }

    /// <summary>
    /// Whether <see cref="AddProduct{T}"/> covers rows of <paramref name="length"/> values with whole register tiles, so that
    /// padding them to more columns would only add work.
    /// </summary>
    public static bool WholeTiles<T>(int length) where T : unmanaged, IFloatingPointIeee754<T> =>
        Lanes512<T>.Supported ? length % (2 * Vector512<T>.Count) == 0 : length % (2 * Vector<T>.Count) == 0 || length == 3 * Vector<T>.Count;

    /// <summary><see cref="AddProduct{T}"/> in vectors of type TV.</summary>
    internal static void AddProduct<T, TV, TL>(Span<T> c, int cStride, int rows, ReadOnlySpan<T> a, int aRow, int aColumn,
        ReadOnlySpan<T> b, int bStride, int depth, int length) where T : unmanaged, IFloatingPointIeee754<T> where TL : struct, ILanes<TV, T>
    {
        if (rows == 0 || depth == 0 || length == 0) return;
        c = c[..((rows - 1) * cStride + length)];
        a = a[..((rows - 1) * aRow + (depth - 1) * aColumn + 1)];
        b = b[..((depth - 1) * bStride + length)];
        new Product<T>(cStride, rows, aRow, aColumn, bStride, depth, length)
            .Run<TV, TL>(ref MemoryMarshal.GetReference(c), ref MemoryMarshal.GetReference(a), ref MemoryMarshal.GetReference(b));
    }

    /// <summary>The shape of one <see cref="AddProduct{T}"/>; bounds are checked by the caller.</summary>
    readonly record struct Product<T>(nint CStride, int Rows, nint ARow, nint AColumn, nint BStride, int Depth, int Length)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run<TV, TL>(ref T c, ref T a, ref T b) where TL : struct, ILanes<TV, T>
        {
            for (var r = 0; r < Rows; r += TL.TileRows)
            {
                // A last tile of fewer rows repeats its last row: the copies compute and store the same values.
                var last = Math.Min(TL.TileRows, Rows - r) - 1;
                ref var c0 = ref Unsafe.Add(ref c, r * CStride);
                ref var a0 = ref Unsafe.Add(ref a, r * ARow);
                var k = TL.TileRows == 4 && Length == 3 * TL.Count ? ThreeVectorTiles<TV, TL>(ref c0, ref a0, ref b, last) : Tiles<TV, TL>(ref c0, ref a0, ref b, last);
                for (var i = 0; i <= last; i++) Row<TV, TL>(ref Unsafe.Add(ref c0, i * CStride), ref Unsafe.Add(ref a0, i * ARow), ref b, k);
            }
        }

        // One group of TL.TileRows rows of c (rows past `last` repeat it), in tiles of two vectors across the
        // row, as far as whole tiles go; returns where they stop. A tile's sums stay in registers over the whole
        // depth and each vector of b loaded serves every row. Rows 4-7 exist only in the 8-row specialisation
        // (TL.TileRows is a constant there, so the JIT drops the other branch).
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        int Tiles<TV, TL>(ref T c, ref T a, ref T b, int last) where TL : struct, ILanes<TV, T>
        {
            var w = (nuint)TL.Count;
            var wide = TL.TileRows == 8;
            var (cStride, aRow, bStride, aColumn) = (CStride, ARow, BStride, AColumn);
            nint c1 = Math.Min(1, last) * cStride, c2 = Math.Min(2, last) * cStride, c3 = Math.Min(3, last) * cStride, c4 = Math.Min(4, last) * cStride,
                c5 = Math.Min(5, last) * cStride, c6 = Math.Min(6, last) * cStride, c7 = Math.Min(7, last) * cStride;
            nint a1 = Math.Min(1, last) * aRow, a2 = Math.Min(2, last) * aRow, a3 = Math.Min(3, last) * aRow, a4 = Math.Min(4, last) * aRow,
                a5 = Math.Min(5, last) * aRow, a6 = Math.Min(6, last) * aRow, a7 = Math.Min(7, last) * aRow;
            var k = 0;
            for (; k + 2 * TL.Count <= Length; k += 2 * TL.Count)
            {
                ref var ck = ref Unsafe.Add(ref c, k);
                ref var bk = ref Unsafe.Add(ref b, k);
                ref var aj = ref a;
                TV x0 = TL.Load(ref ck, 0), y0 = TL.Load(ref ck, w);
                TV x1 = TL.Load(ref Unsafe.Add(ref ck, c1), 0), y1 = TL.Load(ref Unsafe.Add(ref ck, c1), w);
                TV x2 = TL.Load(ref Unsafe.Add(ref ck, c2), 0), y2 = TL.Load(ref Unsafe.Add(ref ck, c2), w);
                TV x3 = TL.Load(ref Unsafe.Add(ref ck, c3), 0), y3 = TL.Load(ref Unsafe.Add(ref ck, c3), w);
                TV x4 = default!, y4 = default!, x5 = default!, y5 = default!, x6 = default!, y6 = default!, x7 = default!, y7 = default!;
                if (wide)
                {
                    (x4, y4) = (TL.Load(ref Unsafe.Add(ref ck, c4), 0), TL.Load(ref Unsafe.Add(ref ck, c4), w));
                    (x5, y5) = (TL.Load(ref Unsafe.Add(ref ck, c5), 0), TL.Load(ref Unsafe.Add(ref ck, c5), w));
                    (x6, y6) = (TL.Load(ref Unsafe.Add(ref ck, c6), 0), TL.Load(ref Unsafe.Add(ref ck, c6), w));
                    (x7, y7) = (TL.Load(ref Unsafe.Add(ref ck, c7), 0), TL.Load(ref Unsafe.Add(ref ck, c7), w));
                }
                for (var j = Depth; j > 0; j--)
                {
                    var u = TL.Load(ref bk, 0);
                    var v = TL.Load(ref bk, w);
                    var s = TL.Broadcast(aj);
                    x0 = TL.MultiplyAdd(s, u, x0);
                    y0 = TL.MultiplyAdd(s, v, y0);
                    s = TL.Broadcast(Unsafe.Add(ref aj, a1));
                    x1 = TL.MultiplyAdd(s, u, x1);
                    y1 = TL.MultiplyAdd(s, v, y1);
                    s = TL.Broadcast(Unsafe.Add(ref aj, a2));
                    x2 = TL.MultiplyAdd(s, u, x2);
                    y2 = TL.MultiplyAdd(s, v, y2);
                    s = TL.Broadcast(Unsafe.Add(ref aj, a3));
                    x3 = TL.MultiplyAdd(s, u, x3);
                    y3 = TL.MultiplyAdd(s, v, y3);
                    if (wide)
                    {
                        s = TL.Broadcast(Unsafe.Add(ref aj, a4));
                        x4 = TL.MultiplyAdd(s, u, x4);
                        y4 = TL.MultiplyAdd(s, v, y4);
                        s = TL.Broadcast(Unsafe.Add(ref aj, a5));
                        x5 = TL.MultiplyAdd(s, u, x5);
                        y5 = TL.MultiplyAdd(s, v, y5);
                        s = TL.Broadcast(Unsafe.Add(ref aj, a6));
                        x6 = TL.MultiplyAdd(s, u, x6);
                        y6 = TL.MultiplyAdd(s, v, y6);
                        s = TL.Broadcast(Unsafe.Add(ref aj, a7));
                        x7 = TL.MultiplyAdd(s, u, x7);
                        y7 = TL.MultiplyAdd(s, v, y7);
                    }
                    bk = ref Unsafe.Add(ref bk, bStride);
                    aj = ref Unsafe.Add(ref aj, aColumn);
                }
                // Last row first: where rows repeat, the copies hold the same values anyway.
                if (wide)
                {
                    TL.Store(x7, ref Unsafe.Add(ref ck, c7), 0); TL.Store(y7, ref Unsafe.Add(ref ck, c7), w);
                    TL.Store(x6, ref Unsafe.Add(ref ck, c6), 0); TL.Store(y6, ref Unsafe.Add(ref ck, c6), w);
                    TL.Store(x5, ref Unsafe.Add(ref ck, c5), 0); TL.Store(y5, ref Unsafe.Add(ref ck, c5), w);
                    TL.Store(x4, ref Unsafe.Add(ref ck, c4), 0); TL.Store(y4, ref Unsafe.Add(ref ck, c4), w);
                }
                TL.Store(x3, ref Unsafe.Add(ref ck, c3), 0); TL.Store(y3, ref Unsafe.Add(ref ck, c3), w);
                TL.Store(x2, ref Unsafe.Add(ref ck, c2), 0); TL.Store(y2, ref Unsafe.Add(ref ck, c2), w);
                TL.Store(x1, ref Unsafe.Add(ref ck, c1), 0); TL.Store(y1, ref Unsafe.Add(ref ck, c1), w);
                TL.Store(x0, ref ck, 0); TL.Store(y0, ref ck, w);
            }
            return k;
        }

        // Four rows of c (rows past `last` repeat it) of exactly three vectors, in one tile: twelve sums, three vectors
        // of b and a broadcast are AVX2's sixteen registers. Against two-vector tiles over the row padded to four
        // vectors, a quarter fewer products and no padded copy of b (measured 1.6 times faster at 16 × 512 · 512 × 24).
        // Written out row by row on purpose: with tuple assignments (or a helper returning a row's three sums) the same
        // tile took 2.2 times as long, the JIT keeping the temporaries in memory.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        int ThreeVectorTiles<TV, TL>(ref T c, ref T a, ref T b, int last) where TL : struct, ILanes<TV, T>
        {
            var (w, w2) = ((nuint)TL.Count, 2 * (nuint)TL.Count);
            var (cStride, aRow, bStride, aColumn) = (CStride, ARow, BStride, AColumn);
            nint c1 = Math.Min(1, last) * cStride, c2 = Math.Min(2, last) * cStride, c3 = Math.Min(3, last) * cStride;
            nint a1 = Math.Min(1, last) * aRow, a2 = Math.Min(2, last) * aRow, a3 = Math.Min(3, last) * aRow;
            ref var r1 = ref Unsafe.Add(ref c, c1);
            ref var r2 = ref Unsafe.Add(ref c, c2);
            ref var r3 = ref Unsafe.Add(ref c, c3);
            TV x0 = TL.Load(ref c, 0), y0 = TL.Load(ref c, w), z0 = TL.Load(ref c, w2);
            TV x1 = TL.Load(ref r1, 0), y1 = TL.Load(ref r1, w), z1 = TL.Load(ref r1, w2);
            TV x2 = TL.Load(ref r2, 0), y2 = TL.Load(ref r2, w), z2 = TL.Load(ref r2, w2);
            TV x3 = TL.Load(ref r3, 0), y3 = TL.Load(ref r3, w), z3 = TL.Load(ref r3, w2);
            ref var bk = ref b;
            ref var aj = ref a;
            for (var j = Depth; j > 0; j--)
            {
                var u = TL.Load(ref bk, 0);
                var v = TL.Load(ref bk, w);
                var q = TL.Load(ref bk, w2);
                var s = TL.Broadcast(aj);
                x0 = TL.MultiplyAdd(s, u, x0);
                y0 = TL.MultiplyAdd(s, v, y0);
                z0 = TL.MultiplyAdd(s, q, z0);
                s = TL.Broadcast(Unsafe.Add(ref aj, a1));
                x1 = TL.MultiplyAdd(s, u, x1);
                y1 = TL.MultiplyAdd(s, v, y1);
                z1 = TL.MultiplyAdd(s, q, z1);
                s = TL.Broadcast(Unsafe.Add(ref aj, a2));
                x2 = TL.MultiplyAdd(s, u, x2);
                y2 = TL.MultiplyAdd(s, v, y2);
                z2 = TL.MultiplyAdd(s, q, z2);
                s = TL.Broadcast(Unsafe.Add(ref aj, a3));
                x3 = TL.MultiplyAdd(s, u, x3);
                y3 = TL.MultiplyAdd(s, v, y3);
                z3 = TL.MultiplyAdd(s, q, z3);
                bk = ref Unsafe.Add(ref bk, bStride);
                aj = ref Unsafe.Add(ref aj, aColumn);
            }
            // Last row first: where rows repeat, the copies hold the same values anyway.
            TL.Store(x3, ref r3, 0); TL.Store(y3, ref r3, w); TL.Store(z3, ref r3, w2);
            TL.Store(x2, ref r2, 0); TL.Store(y2, ref r2, w); TL.Store(z2, ref r2, w2);
            TL.Store(x1, ref r1, 0); TL.Store(y1, ref r1, w); TL.Store(z1, ref r1, w2);
            TL.Store(x0, ref c, 0); TL.Store(y0, ref c, w); TL.Store(z0, ref c, w2);
            return Length;
        }

        // One row of c from value `from` on: one vector at a time, then single values.
        void Row<TV, TL>(ref T c, ref T a, ref T b, int from) where TL : struct, ILanes<TV, T>
        {
            var w = TL.Count;
            var k = from;
            for (; k + w <= Length; k += w)
            {
                var x = TL.Load(ref c, (nuint)k);
                for (var j = 0; j < Depth; j++) x = TL.MultiplyAdd(TL.Broadcast(Unsafe.Add(ref a, j * AColumn)), TL.Load(ref b, (nuint)(j * BStride + k)), x);
                TL.Store(x, ref c, (nuint)k);
            }
            for (; k < Length; k++)
            {
                var x = Unsafe.Add(ref c, k);
                for (var j = 0; j < Depth; j++) x += Unsafe.Add(ref a, j * AColumn) * Unsafe.Add(ref b, j * BStride + k);
                Unsafe.Add(ref c, k) = x;
            }
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
