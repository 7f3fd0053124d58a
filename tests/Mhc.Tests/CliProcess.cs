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

    /// <summary>
    /// Runs <paramref name="file"/> to completion (killed after <paramref name="timeout"/>, 5 minutes unless given), in
    /// <paramref name="workingDirectory"/> if given, with <paramref name="environment"/> set (a null value removes the variable).
    /// </summary>
    public static (int Code, string Out, string Err) RunFile(string file, IEnumerable<string> args, string? workingDirectory = null,
        TimeSpan? timeout = null, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var info = StartInfo(file, args);
        if (workingDirectory is not null) info.WorkingDirectory = workingDirectory;
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null) info.Environment.Remove(name);
            else info.Environment[name] = value;
        }
        var limit = timeout ?? TimeSpan.FromMinutes(5);
        using var process = new Process { StartInfo = info };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Path.GetFileName(file)} {string.Join(' ', info.ArgumentList)} did not finish in {limit.TotalMinutes:0.#} minutes");
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.ToString(), stderr.ToString());
    }
}
