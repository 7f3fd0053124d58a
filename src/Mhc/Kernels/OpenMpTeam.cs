using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Mhc.Kernels;

/// <summary>
/// Runs work items on libtorch's own OpenMP thread team (<c>GOMP_parallel</c> of the OpenMP runtime libtorch
/// links). Why not the .NET thread pool: after every libtorch op the OpenMP workers spin-wait for the next
/// parallel region, so a pool thread started right after one shares its core with a spinning thread; a state
/// pass measured about twice as slow right after a matmul as alone. On the team's threads there is no one to
/// compete with, and the spinning workers take the work at once. Linux with libgomp only; elsewhere
/// <see cref="Available"/> is false and callers use the thread pool.
/// </summary>
static unsafe class OpenMpTeam
{
    static readonly delegate* unmanaged<delegate* unmanaged<nint, void>, nint, uint, uint, void> parallel = Resolve();

    /// <summary>Whether libtorch's OpenMP runtime was found.</summary>
    public static bool Available => parallel != null;

    /// <summary>Calls <paramref name="body"/> for 0..count−1 on <paramref name="threads"/> threads, items handed out in order as threads free up.</summary>
    public static void For(long count, int threads, Action<long> body)
    {
        var work = new Work(count, body);
        var handle = GCHandle.Alloc(work);
        try
        {
            parallel(&Run, GCHandle.ToIntPtr(handle), (uint)threads, 0);
        }
        finally
        {
            handle.Free();
        }
        if (work.Error is { } error) ExceptionDispatchInfo.Throw(error);
    }

    [UnmanagedCallersOnly]
    static void Run(nint data)
    {
        var work = (Work)GCHandle.FromIntPtr(data).Target!;
        try
        {
            for (long item; work.Error is null && (item = Interlocked.Increment(ref work.Next) - 1) < work.Count;) work.Body(item);
        }
        catch (Exception e)
        {
            // Nothing may unwind into native code: the first error is rethrown on the calling thread.
            Interlocked.CompareExchange(ref work.Error, e, null);
        }
    }

    sealed class Work(long count, Action<long> body)
    {
        public readonly long Count = count;
        public readonly Action<long> Body = body;
        public long Next;
        public Exception? Error;
    }

    static delegate* unmanaged<delegate* unmanaged<nint, void>, nint, uint, uint, void> Resolve()
    {
        // libtorch_cpu is loaded by then; a symbol lookup through its handle searches its dependencies, the OpenMP runtime among them.
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libtorch_cpu.so", typeof(torch).Assembly, null, out var library)) return null;
        return NativeLibrary.TryGetExport(library, "GOMP_parallel", out var entry)
            ? (delegate* unmanaged<delegate* unmanaged<nint, void>, nint, uint, uint, void>)entry
            : null;
    }
}
