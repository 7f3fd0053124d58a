using TorchSharp;
using System.Diagnostics;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>
/// The build's libstdc++ compatibility step, checked with binutils' readelf (an independent ELF reader):
/// the output copy of TorchSharp's wrapper is patched exactly when the system libstdc++ lacks
/// GLIBCXX_3.4.32, and the NuGet cache copy never is.
/// </summary>
public class NativeLibraryPatchTests
{
    const string Version = "GLIBCXX_3.4.32";

    [Fact]
    public void TorchSharp_loads_and_computes()
    {
        using var a = ones(64, 64);
        Assert.Equal(64.0 * 64 * 64, a.matmul(a).sum().ToDouble());
    }

    [FactWhen(Requirement.Linux, Requirement.Readelf)]
    public void Output_copy_is_weak_exactly_when_the_system_lacks_the_version_and_the_cache_is_untouched()
    {
        var output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(output), $"{output} is missing");
        var systemHasVersion = new[] { "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64" }
            .Select(dir => Path.Combine(dir, "libstdc++.so.6"))
            .Where(File.Exists)
            .Take(1)
            .Any(lib => ReadElfVersions(lib).Contains($"Name: {Version}", StringComparison.Ordinal));
        Assert.Equal(systemHasVersion ? "none" : "WEAK", RequirementFlags(output));

        var cache = Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
            "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (File.Exists(cache)) Assert.Equal("none", RequirementFlags(cache));
    }

    static string RequirementFlags(string library)
    {
        // readelf -V prints "0x0140:   Name: GLIBCXX_3.4.32  Flags: WEAK  Version: 18" in .gnu.version_r.
        var line = ReadElfVersions(library).Split('\n').Single(l => l.Contains($"Name: {Version} ", StringComparison.Ordinal) && l.Contains("Flags:", StringComparison.Ordinal));
        return line[(line.IndexOf("Flags:", StringComparison.Ordinal) + 6)..].Trim().Split(' ')[0];
    }

    static string ReadElfVersions(string path)
    {
        using var process = Process.Start(new ProcessStartInfo("readelf", ["-V", "-W", path]) { RedirectStandardOutput = true })!;
        var text = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
        return text;
    }
}
