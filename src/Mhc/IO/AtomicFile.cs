namespace Mhc.IO;

/// <summary>Writes that are never seen half-done: a temporary file, flushed to disk, then renamed over the target.</summary>
static class AtomicFile
{
    /// <summary>Replaces <paramref name="path"/> with <paramref name="text"/> atomically.</summary>
    /// <param name="path">Target file.</param>
    /// <param name="text">New contents.</param>
    public static void WriteAllText(string path, string text) =>
        Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            writer.Write(text);
        });

    /// <summary>Replaces <paramref name="path"/> with what <paramref name="write"/> writes, atomically.</summary>
    /// <param name="path">Target file.</param>
    /// <param name="write">Writes the contents to the stream.</param>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}
