using System.Runtime.InteropServices;

namespace Mhc.Diagnostics;

/// <summary>
/// Resident memory of this process, for peak-memory figures. On Linux the peak (VmHWM) can be reset, so
/// the peak of one phase (a training step of one model) is measured inside a longer-running process.
/// Elsewhere only the lifetime peak is available and <see cref="CanMeasurePhases"/> is false.
/// </summary>
static class ProcessMemory
{
    /// <summary>Whether <see cref="ResetPeak"/> works here (Linux).</summary>
    public static bool CanMeasurePhases { get; } = OperatingSystem.IsLinux() && File.Exists("/proc/self/clear_refs");

    /// <summary>Current resident set size in bytes.</summary>
    public static long Resident() => CanMeasurePhases ? Status("VmRSS:") : Environment.WorkingSet;

    /// <summary>Peak resident set size in bytes since the last <see cref="ResetPeak"/> (or process start).</summary>
    public static long Peak() => CanMeasurePhases ? Status("VmHWM:") : System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64;

    /// <summary>
    /// Returns memory that the C allocator holds but no longer uses to the OS (glibc's malloc_trim).
    /// libtorch frees tensors into per-thread arenas that otherwise keep growing with fragmentation.
    /// A no-op where glibc is not the allocator.
    /// </summary>
    public static void Trim()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            _ = MallocTrim(0);   // 1 if memory was released; either way is fine
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: nothing to trim this way.
        }
    }

    /// <summary>
    /// Returns freed memory to the OS (GC, then glibc's malloc_trim) and resets the peak to the current
    /// resident size, so the next <see cref="Peak"/> reflects only what happens after this call.
    /// </summary>
    public static void ResetPeak()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        if (!CanMeasurePhases) return;
        Trim();
        File.WriteAllText("/proc/self/clear_refs", "5");
    }

    static long Status(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        return 0;
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    static extern int MallocTrim(nuint pad);
}
