using System.Runtime.CompilerServices;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Mhc.Kernels;

/// <summary>SIMD building blocks over spans of float or double (Vector&lt;T&gt; width, scalar tail).</summary>
static class VectorOps
{
    /// <summary>Σ a_k b_k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static T Dot<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var va = MemoryMarshal.Cast<T, Vector<T>>(a);
        var vb = MemoryMarshal.Cast<T, Vector<T>>(b[..a.Length]);
        var acc = Vector<T>.Zero;
        for (var k = 0; k < va.Length; k++) acc += va[k] * vb[k];
        var sum = Vector.Sum(acc);
        for (var k = va.Length * Vector<T>.Count; k < a.Length; k++) sum += a[k] * b[k];
        return sum;
    }

    /// <summary>dst += s · src.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddScaled<T>(Span<T> dst, ReadOnlySpan<T> src, T s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var vd = MemoryMarshal.Cast<T, Vector<T>>(dst);
        var vs = MemoryMarshal.Cast<T, Vector<T>>(src[..dst.Length]);
        for (var k = 0; k < vd.Length; k++) vd[k] += vs[k] * s;
        for (var k = vd.Length * Vector<T>.Count; k < dst.Length; k++) dst[k] += src[k] * s;
    }

    /// <summary>dst = s · src.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scale<T>(Span<T> dst, ReadOnlySpan<T> src, T s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var vd = MemoryMarshal.Cast<T, Vector<T>>(dst);
        var vs = MemoryMarshal.Cast<T, Vector<T>>(src[..dst.Length]);
        for (var k = 0; k < vd.Length; k++) vd[k] = vs[k] * s;
        for (var k = vd.Length * Vector<T>.Count; k < dst.Length; k++) dst[k] = src[k] * s;
    }
}
