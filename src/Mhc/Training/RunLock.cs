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

    /// <summary>
    /// Takes the lock or throws <see cref="RunDirectoryInUseException"/>; an <see cref="IOException"/> saying so when the
    /// directory cannot be written (a read-only file system, or no permission).
    /// </summary>
    /// <param name="runDirectory">Run directory (created if missing).</param>
    public static RunLock Acquire(string runDirectory)
    {
        var path = Path.Combine(runDirectory, FileName);
        try
        {
            Directory.CreateDirectory(runDirectory);
            var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            stream.SetLength(0);
            using (var writer = new StreamWriter(stream, leaveOpen: true)) writer.Write(Environment.ProcessId);
            stream.Flush();
            return new RunLock(stream);
        }
        catch (Exception e) when ((e is IOException or UnauthorizedAccessException) && !Writable(runDirectory))
        {
            throw new IOException($"run directory '{runDirectory}' is on a read-only file system (or not writable): its lock file '{path}' cannot be created ({e.Message.TrimEnd('.')}). " +
                "Copy the run to a writable directory to resume it there.", e);
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

    /// <summary>
    /// Whether a file can be created in <paramref name="directory"/>: what tells a lock held by another process from a
    /// directory that cannot be written, also for root, whom permissions do not stop but a read-only mount does.
    /// </summary>
    static bool Writable(string directory)
    {
        try
        {
            using var probe = new FileStream(Path.Combine(directory, $".write-test-{Environment.ProcessId}"), FileMode.CreateNew, FileAccess.Write,
                FileShare.None, 1, FileOptions.DeleteOnClose);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
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
