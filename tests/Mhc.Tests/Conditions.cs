using System.Diagnostics;
using System.Runtime.InteropServices;
using Mhc.Kernels;

namespace Mhc.Tests;

/// <summary>Something a test needs of the machine it runs on.</summary>
enum Requirement
{
    /// <summary>Linux (the libstdc++ patch, GNU OpenMP from TorchSharp-cpu, <c>/proc</c>).</summary>
    Linux,

    /// <summary>Unprivileged user and mount namespaces: <c>unshare -r -m</c> can mount a small tmpfs.</summary>
    MountNamespace,

    /// <summary>binutils' <c>readelf</c> on the PATH (an ELF reader independent of the build).</summary>
    Readelf,

    /// <summary>512-bit vectors in hardware (AVX-512), for the kernels' second vector width.</summary>
    Vector512,

    /// <summary>No CUDA device visible to TorchSharp (the CPU bundle, or no GPU): what the "CUDA asked for, none here" errors need.</summary>
    NoCuda,

    /// <summary>An unprivileged user, whom file permissions stop (root ignores them).</summary>
    Unprivileged,

    /// <summary>Debian's Python with PyTorch (<c>/usr/bin/python3</c> importing torch; <c>.ci/run</c> installs python3-torch).</summary>
    PyTorch,

    /// <summary>
    /// SIGINT not ignored by this process: a child inherits an ignored SIGINT (as a background job of a non-interactive
    /// shell has it), and then no Ctrl+C reaches it.
    /// </summary>
    SigintNotIgnored,
}

/// <summary>
/// Whether this machine meets a <see cref="Requirement"/>, and if not, why: the reason a test is reported as
/// skipped. A test that cannot apply here is skipped with that reason, never passed without running.
/// </summary>
static class Conditions
{
    static readonly Lazy<string?> MountNamespaceProblem = new(ProbeMountNamespace);
    static readonly Lazy<string?> PyTorchProblem = new(ProbePyTorch);

    /// <summary>The Python the PyTorch tests run: Debian's, not whatever python3 comes first on the PATH.</summary>
    public const string Python = "/usr/bin/python3";

    /// <summary>Null when <paramref name="requirement"/> is met; otherwise the skip reason.</summary>
    public static string? Unmet(Requirement requirement) => requirement switch
    {
        Requirement.Linux => OperatingSystem.IsLinux() ? null : $"needs Linux; this is {RuntimeInformation.OSDescription}",
        Requirement.MountNamespace => Unmet(Requirement.Linux) ?? MountNamespaceProblem.Value,
        Requirement.Readelf => Unmet(Requirement.Linux) ?? (OnPath("readelf") ? null : "needs binutils' readelf on the PATH (apt-get install binutils)"),
        Requirement.Vector512 => Lanes512<double>.Supported ? null : "needs AVX-512: this CPU has no 512-bit vectors, so the kernels run in Vector<T> only",
        Requirement.PyTorch => PyTorchProblem.Value,
        Requirement.Unprivileged => Environment.IsPrivilegedProcess ? "runs as root, whom file permissions do not stop (a read-only mount still does: see the MountNamespace tests)" : null,
        Requirement.NoCuda => TorchSharp.torch.cuda.is_available() ? "this machine has CUDA, so asking for it is not an error here" : null,
        Requirement.SigintNotIgnored => Unmet(Requirement.Linux) ?? (SigintIgnored()
            ? "SIGINT is ignored in this process (started in the background by a non-interactive shell?) and a child inherits that, so no SIGINT can reach mhc"
            : null),
        _ => throw new ArgumentOutOfRangeException(nameof(requirement), requirement, null),
    };

    /// <summary>The first unmet requirement's reason, or null when all are met.</summary>
    public static string? FirstUnmet(IEnumerable<Requirement> requirements) => requirements.Select(Unmet).FirstOrDefault(r => r is not null);

    // Bit 1 (signal 2) of the ignored-signals mask in /proc/self/status.
    static bool SigintIgnored()
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & (1UL << 1)) != 0;
    }

    static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, program)));

    static string? ProbePyTorch()
    {
        if (!File.Exists(Python)) return $"needs {Python} with PyTorch (apt-get install python3-torch)";
        var result = CliProcess.RunFile(Python, ["-c", "import torch; print(torch.__version__)"]);
        return result.Code == 0 ? null : $"needs PyTorch for {Python} (apt-get install --no-install-recommends python3-torch): {result.Err.Trim()}";
    }

    /// <summary>Mounts a 64 kB tmpfs in a private user and mount namespace, as the full-disk test does.</summary>
    static string? ProbeMountNamespace()
    {
        if (!OnPath("unshare")) return "needs util-linux's unshare on the PATH";
        var mountPoint = Directory.CreateTempSubdirectory("mhc-probe-").FullName;
        try
        {
            var info = new ProcessStartInfo("unshare", ["-r", "-m", "sh", "-c", $"mount -t tmpfs -o size=64k tmpfs '{mountPoint}'"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(info)!;
            var stderr = process.StandardError.ReadToEndAsync();
            process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                process.Kill(entireProcessTree: true);
                return "needs unprivileged mount namespaces: `unshare -r -m` did not finish in 30 s";
            }
            return process.ExitCode == 0
                ? null
                : $"needs unprivileged user and mount namespaces (as in a container without them): `unshare -r -m` + mount tmpfs failed: {stderr.Result.Trim()}";
        }
        finally
        {
            Directory.Delete(mountPoint);
        }
    }
}

/// <summary>A <see cref="FactAttribute"/> that is skipped, with the reason, on a machine that lacks one of <see cref="Requirements"/>.</summary>
sealed class FactWhenAttribute : FactAttribute
{
    public FactWhenAttribute(params Requirement[] requirements)
    {
        Requirements = requirements;
        Skip = Conditions.FirstUnmet(requirements);
    }

    public IReadOnlyList<Requirement> Requirements { get; }
}

/// <summary>A <see cref="TheoryAttribute"/> that is skipped, with the reason, on a machine that lacks one of <see cref="Requirements"/>.</summary>
sealed class TheoryWhenAttribute : TheoryAttribute
{
    public TheoryWhenAttribute(params Requirement[] requirements)
    {
        Requirements = requirements;
        Skip = Conditions.FirstUnmet(requirements);
    }

    public IReadOnlyList<Requirement> Requirements { get; }
}
