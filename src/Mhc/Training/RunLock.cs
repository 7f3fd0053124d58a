namespace Mhc.Training;

/// <summary>
/// An exclusive lock on a run directory (<c>.lock</c>, held open for the run's lifetime), so two
/// trainings pointed at the same directory cannot interleave their checkpoints and logs.
/// </summary>
sealed class RunLock : IDisposable
{
    /// <summary>Lock file name inside the run directory.</summary>
    public const string FileName = ".lock";

    readonly FileStream stream;

    RunLock(FileStream stream) => this.stream = stream;

    /// <summary>Takes the lock or throws <see cref="RunDirectoryInUseException"/>.</summary>
    /// <param name="runDirectory">Run directory (created if missing).</param>
    public static RunLock Acquire(string runDirectory)
    {
        Directory.CreateDirectory(runDirectory);
        var path = Path.Combine(runDirectory, FileName);
        try
        {
            var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            stream.SetLength(0);
            using (var writer = new StreamWriter(stream, leaveOpen: true)) writer.Write(Environment.ProcessId);
            stream.Flush();
            return new RunLock(stream);
        }
        catch (IOException e)
        {
            var owner = "another process";
            try
            {
                owner = $"process {File.ReadAllText(path).Trim()}";
            }
            catch (Exception read) when (read is IOException or UnauthorizedAccessException)
            {
                // The owner's pid is only informative.
            }
            throw new RunDirectoryInUseException($"run directory '{runDirectory}' is in use by {owner} (lock file {path}); wait for it to finish or choose another directory.", e);
        }
    }

    /// <inheritdoc/>
    public void Dispose() => stream.Dispose();
}

/// <summary>A new run was asked for in a run directory that already holds one.</summary>
public sealed class RunExistsException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Names the directory and its newest checkpoint.</param>
    public RunExistsException(string message) : base(message) { }
}

/// <summary>Another training holds the run directory's lock.</summary>
public sealed class RunDirectoryInUseException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Names the directory and the owner.</param>
    /// <param name="inner">The sharing violation.</param>
    public RunDirectoryInUseException(string message, Exception inner) : base(message, inner) { }
}
