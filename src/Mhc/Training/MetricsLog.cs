using Mhc.IO;
using System.Text.Json;

namespace Mhc.Training;

/// <summary>The run's <c>metrics.jsonl</c>: one JSON object per logged step, appended and flushed as training goes.</summary>
sealed class MetricsLog
{
    /// <summary>File name inside the run directory.</summary>
    public const string FileName = "metrics.jsonl";

    readonly string path;

    /// <summary>The log of the run in <paramref name="runDirectory"/>.</summary>
    /// <param name="runDirectory">Run directory.</param>
    public MetricsLog(string runDirectory) => path = Path.Combine(runDirectory, FileName);

    /// <summary>Path of the file.</summary>
    public string FilePath => path;

    /// <summary>Starts an empty log.</summary>
    public void Reset() => AtomicFile.WriteAllText(path, "");

    /// <summary>Keeps only the lines of steps up to <paramref name="step"/> (on resume from that checkpoint).</summary>
    /// <param name="step">Last step to keep.</param>
    public void TruncateAfter(long step) =>
        AtomicFile.WriteAllText(path, string.Concat(Read(path).Where(r => r.Step <= step).Select(r => Serialize(r) + "\n")));

    /// <summary>Appends one line and flushes it to disk.</summary>
    /// <param name="record">The line.</param>
    public void Append(MetricsRecord record)
    {
        using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        using var writer = new StreamWriter(stream);
        writer.Write(Serialize(record) + "\n");
        writer.Flush();
        stream.Flush(flushToDisk: true);
    }

    /// <summary>All records of a metrics file; a torn last line (a crash mid-write) is ignored.</summary>
    /// <param name="file">A metrics.jsonl file.</param>
    public static List<MetricsRecord> Read(string file)
    {
        if (!File.Exists(file)) return [];
        var records = new List<MetricsRecord>();
        foreach (var line in File.ReadLines(file))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                records.Add(JsonSerializer.Deserialize<MetricsRecord>(line, MetricsRecord.Json)!);
            }
            catch (JsonException)
            {
                break;
            }
        }
        return records;
    }

    static string Serialize(MetricsRecord record) => JsonSerializer.Serialize(record, MetricsRecord.Json);
}
