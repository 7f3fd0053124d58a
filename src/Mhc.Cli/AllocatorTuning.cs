using System.Runtime.InteropServices;

namespace Mhc.Cli;

/// <summary>
/// Keeps the memory a training step frees for the next step. With glibc's defaults, large freed blocks go back to the
/// system (the heap's top is trimmed, blocks past the mmap threshold are unmapped), so every step faults the same
/// megabytes in again and the kernel zeroes them: at the <c>s</c> bench preset, thousands of page faults and tens of
/// milliseconds of system time per mHC or HC step, which allocate more and more varied buffers than residual's.
/// Blocks up to 32 MB (glibc's largest mmap threshold) now come from the heap, and freeing never trims it;
/// <c>ProcessMemory.Trim</c> still returns free memory explicitly (before peak-memory measurements, after evaluations).
/// Linux with glibc only; elsewhere nothing changes.
/// </summary>
static class AllocatorTuning
{
    // mallopt's parameters (malloc.h).
    const int TrimThreshold = -1;
    const int MmapThreshold = -3;

    /// <summary>Sets the thresholds for this process; call once at start, before large allocations.</summary>
    public static void KeepFreedMemory()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            _ = Mallopt(MmapThreshold, 32 << 20);   // 0 if refused: the defaults stay, which is only slower
            _ = Mallopt(TrimThreshold, int.MaxValue);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl has no mallopt): its allocator keeps its own policy.
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    static extern int Mallopt(int parameter, int value);
}
