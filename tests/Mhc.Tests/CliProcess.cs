using System.Diagnostics;
using System.Text;

namespace Mhc.Tests;

/// <summary>Runs the real <c>mhc</c> executable (built next to the tests) as a separate process.</summary>
static class CliProcess
{
    public static string Executable => Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "mhc.exe" : "mhc");

    public static ProcessStartInfo StartInfo(string file, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        return info;
    }

    /// <summary>Runs to completion; returns the exit code and both outputs.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args) => RunFile(Executable, args);

    public static (int Code, string Out, string Err) RunFile(string file, IEnumerable<string> args)
    {
        using var process = new Process { StartInfo = StartInfo(file, args) };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"mhc {string.Join(' ', args)} did not finish in 5 minutes");
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.ToString(), stderr.ToString());
    }
}
