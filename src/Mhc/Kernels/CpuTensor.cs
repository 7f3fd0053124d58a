using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Mhc.Kernels;

/// <summary>Direct access to the memory of contiguous CPU tensors, for the fused kernels.</summary>
static class CpuTensor
{
    /// <summary>Whether the managed kernels can run on these tensors: all on the CPU, all float32 or all float64.</summary>
    public static bool Supports(params ReadOnlySpan<Tensor> tensors)
    {
        var dtype = tensors[0].dtype;
        if (dtype is not (ScalarType.Float32 or ScalarType.Float64)) return false;
        foreach (var t in tensors)
            if (t.device_type != TorchSharp.DeviceType.CPU || t.dtype != dtype) return false;
        return true;
    }

    /// <summary>The elements of a contiguous CPU tensor as a span (no copy).</summary>
    public static Span<T> Span<T>(Tensor t) where T : unmanaged => MemoryMarshal.Cast<byte, T>(t.bytes);

    /// <summary>A new CPU tensor of the given shape holding <paramref name="values"/> (float or double).</summary>
    public static Tensor From<T>(ReadOnlySpan<T> values, params long[] shape) where T : unmanaged
    {
        var t = empty(shape, typeof(T) == typeof(float) ? ScalarType.Float32 : ScalarType.Float64);
        values.CopyTo(Span<T>(t));
        return t;
    }

    /// <summary>
    /// Fixed chunks of work, independent of the thread count, so reductions are reproducible. They run on
    /// libtorch's OpenMP threads where that runtime is found (see <see cref="OpenMpTeam"/>), else on the
    /// .NET thread pool; either way on libtorch's thread count.
    /// </summary>
    public static void ParallelChunks(long count, long chunk, Action<long, long> body)
    {
        var chunks = (count + chunk - 1) / chunk;
        var threads = Math.Max(1, TorchSharp.torch.get_num_threads());
        void Run(long c) => body(c * chunk, Math.Min(count, (c + 1) * chunk));
        // One chunk (a generated token's few rows) runs here: waking a pool thread for it costs more than the work.
        if (chunks <= 1 || threads == 1)
            for (long c = 0; c < chunks; c++) Run(c);
        else if (OpenMpTeam.Available) OpenMpTeam.For(chunks, threads, Run);
        else Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, Run);
    }
}
