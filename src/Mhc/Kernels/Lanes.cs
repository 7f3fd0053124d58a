using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Mhc.Kernels;

/// <summary>
/// The SIMD operations the compute-bound kernels need (products, Sinkhorn), over a vector type chosen per machine, so that one
/// generic kernel body serves both widths (the JIT compiles a copy per struct type argument and inlines these).
/// </summary>
interface ILanes<TVector, T> where T : unmanaged
{
    /// <summary>Values per vector.</summary>
    static abstract int Count { get; }

    /// <summary>Rows of a product tile kept in registers: 8 where there are 32 vector registers, else 4.</summary>
    static abstract int TileRows { get; }

    /// <summary>The vector at <c>p + i</c>.</summary>
    static abstract TVector Load(ref T p, nuint i);

    /// <summary>Writes <paramref name="v"/> at <c>p + i</c>.</summary>
    static abstract void Store(TVector v, ref T p, nuint i);

    /// <summary>Every lane <paramref name="x"/>.</summary>
    static abstract TVector Broadcast(T x);

    /// <summary>a·b + c, fused.</summary>
    static abstract TVector MultiplyAdd(TVector a, TVector b, TVector c);

    /// <summary>The sum of the lanes.</summary>
    static abstract T Sum(TVector v);

    /// <summary>a + b.</summary>
    static abstract TVector Add(TVector a, TVector b);

    /// <summary>a − b.</summary>
    static abstract TVector Subtract(TVector a, TVector b);

    /// <summary>a · b.</summary>
    static abstract TVector Multiply(TVector a, TVector b);

    /// <summary>a / b.</summary>
    static abstract TVector Divide(TVector a, TVector b);

    /// <summary>Lane-wise maximum.</summary>
    static abstract TVector Max(TVector a, TVector b);

    /// <summary>Lane-wise minimum.</summary>
    static abstract TVector Min(TVector a, TVector b);

    /// <summary>Lane-wise e^v.</summary>
    static abstract TVector Exp(TVector v);

    /// <summary>Lane-wise natural logarithm.</summary>
    static abstract TVector Log(TVector v);

    /// <summary>Whether a &gt; b in any lane.</summary>
    static abstract bool AnyGreaterThan(TVector a, TVector b);
}

/// <summary>
/// 512-bit vectors, for machines with AVX-512. .NET keeps <c>Vector&lt;T&gt;</c> at 256 bits on some of them (for
/// fear of the clock slowing down), but libtorch's own kernels run AVX-512 there anyway, and a compute-bound
/// product does nearly twice the work per instruction.
/// </summary>
readonly struct Lanes512<T> : ILanes<Vector512<T>, T> where T : unmanaged
{
    /// <summary>Whether this machine runs 512-bit vectors in hardware.</summary>
    public static bool Supported => Vector512.IsHardwareAccelerated || System.Runtime.Intrinsics.X86.Avx512F.IsSupported;

    public static int Count => Vector512<T>.Count;

    // AVX-512 has 32 registers: 16 accumulators, two vectors of b and a broadcast fit.
    public static int TileRows => 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Load(ref T p, nuint i) => Vector512.LoadUnsafe(ref p, i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<T> v, ref T p, nuint i) => v.StoreUnsafe(ref p, i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Broadcast(T x) => Vector512.Create(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> MultiplyAdd(Vector512<T> a, Vector512<T> b, Vector512<T> c) =>
        typeof(T) == typeof(float) ? Vector512.FusedMultiplyAdd(a.As<T, float>(), b.As<T, float>(), c.As<T, float>()).As<float, T>()
            : Vector512.FusedMultiplyAdd(a.As<T, double>(), b.As<T, double>(), c.As<T, double>()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Sum(Vector512<T> v) => Vector512.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Add(Vector512<T> a, Vector512<T> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Subtract(Vector512<T> a, Vector512<T> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Multiply(Vector512<T> a, Vector512<T> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Divide(Vector512<T> a, Vector512<T> b) => a / b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Max(Vector512<T> a, Vector512<T> b) => Vector512.Max(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Min(Vector512<T> a, Vector512<T> b) => Vector512.Min(a, b);

    // Exp and Log exist for float and double only; the JIT removes the type test.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Exp(Vector512<T> v) =>
        typeof(T) == typeof(float) ? Vector512.Exp(v.As<T, float>()).As<float, T>() : Vector512.Exp(v.As<T, double>()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Log(Vector512<T> v) =>
        typeof(T) == typeof(float) ? Vector512.Log(v.As<T, float>()).As<float, T>() : Vector512.Log(v.As<T, double>()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool AnyGreaterThan(Vector512<T> a, Vector512<T> b) => Vector512.GreaterThanAny(a, b);
}

/// <summary><c>Vector&lt;T&gt;</c>: the runtime's preferred width, everywhere else.</summary>
readonly struct LanesOfVector<T> : ILanes<Vector<T>, T> where T : unmanaged
{
    public static int Count => Vector<T>.Count;

    // AVX2 has 16 registers: 8 accumulators, two vectors of b and a broadcast fit.
    public static int TileRows => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Load(ref T p, nuint i) => Vector.LoadUnsafe(ref p, i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector<T> v, ref T p, nuint i) => v.StoreUnsafe(ref p, i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Broadcast(T x) => new(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> MultiplyAdd(Vector<T> a, Vector<T> b, Vector<T> c) => VectorOps.MultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Sum(Vector<T> v) => Vector.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Add(Vector<T> a, Vector<T> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Subtract(Vector<T> a, Vector<T> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Multiply(Vector<T> a, Vector<T> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Divide(Vector<T> a, Vector<T> b) => a / b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Max(Vector<T> a, Vector<T> b) => Vector.Max(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Min(Vector<T> a, Vector<T> b) => Vector.Min(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Exp(Vector<T> v) => VectorOps.Exp(v);

    // Log exists for float and double only; the JIT removes the type test.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Log(Vector<T> v) =>
        typeof(T) == typeof(float) ? Vector.Log(v.As<T, float>()).As<float, T>() : Vector.Log(v.As<T, double>()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool AnyGreaterThan(Vector<T> a, Vector<T> b) => Vector.GreaterThanAny(a, b);
}
