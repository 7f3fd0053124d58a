using System.Security.Cryptography;
using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>A checkpoint is missing, incomplete, corrupt, or does not fit the model it is loaded into.</summary>
public sealed class CheckpointException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Names the checkpoint file or folder and the problem.</param>
    /// <param name="inner">The underlying failure, if any.</param>
    public CheckpointException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>What a checkpoint records besides the weights and optimizer moments.</summary>
public sealed record CheckpointState
{
    /// <summary>Completed optimizer steps.</summary>
    public long Step { get; init; }

    /// <summary>Wall time of the run so far.</summary>
    public double ElapsedS { get; init; }

    /// <summary>TorchSharp's global RNG state (dropout), base64.</summary>
    public string RngState { get; init; } = "";

    /// <summary>The run's configuration, so a checkpoint folder is self-contained.</summary>
    public RunConfig Config { get; init; } = new();

    /// <summary>The data the run trains on (<see cref="Training.DataFingerprint"/>); null in checkpoints written before it was kept.</summary>
    public string? DataFingerprint { get; init; }
}

/// <summary>
/// One checkpoint folder <c>checkpoints/step-NNNNNN/</c>: <c>model.bin</c>, <c>optimizer.bin</c>,
/// <c>state.json</c> and <c>checksums.json</c> (SHA-256 of the others). Written into a temporary folder,
/// flushed to disk, then renamed: a checkpoint is never seen half-written; a damaged one fails its checksums. An old one is
/// retired the same way, renamed out of sight before it is deleted, so a reader never sees it half-deleted either.
/// </summary>
public sealed class Checkpoint
{
    /// <summary>Folder of checkpoints inside a run directory.</summary>
    public const string FolderName = "checkpoints";

    const string ModelFile = "model.bin";
    const string OptimizerFile = "optimizer.bin";
    const string StateFile = "state.json";
    const string ChecksumFile = "checksums.json";

    /// <summary>Prefix of checkpoints being deleted; readers list only <c>step-*</c>.</summary>
    const string RetiredPrefix = ".retired-";

    Checkpoint(string directory, CheckpointState state)
    {
        Directory = directory;
        State = state;
    }

    /// <summary>The checkpoint folder.</summary>
    public string Directory { get; }

    /// <summary>Step, time, RNG and config.</summary>
    public CheckpointState State { get; }

    /// <summary>The run directory holding this checkpoint (<c>&lt;run&gt;/checkpoints/step-NNNNNN</c>).</summary>
    public string RunDirectory => Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(Directory))!)!;

    /// <summary>Saves a checkpoint of <paramref name="model"/> and <paramref name="optimizer"/>; keeps the newest <paramref name="keep"/>.</summary>
    /// <param name="runDirectory">Run directory.</param>
    /// <param name="model">Model whose parameters are saved.</param>
    /// <param name="optimizer">Optimizer whose state is saved.</param>
    /// <param name="state">Step, time, RNG and config.</param>
    /// <param name="keep">How many checkpoints to keep (at least 2, so a damaged newest one has a fallback).</param>
    /// <exception cref="IOException">Writing failed (disk full…); the previous checkpoints are untouched.</exception>
    public static string Save(string runDirectory, nn.Module model, OptimizerHelper optimizer, CheckpointState state, int keep = 2)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(state);
        var root = Path.Combine(runDirectory, FolderName);
        System.IO.Directory.CreateDirectory(root);
        var final = Path.Combine(root, $"step-{state.Step:D6}");
        var temp = $"{final}.tmp-{Environment.ProcessId}";
        // Folders left by a run that was killed mid-save or mid-delete are abandoned (the run lock guarantees one writer).
        foreach (var stale in System.IO.Directory.EnumerateDirectories(root, "step-*.tmp-*")
            .Concat(System.IO.Directory.EnumerateDirectories(root, RetiredPrefix + "*"))) TryDelete(stale);
        try
        {
            System.IO.Directory.CreateDirectory(temp);
            // Module.save closes the stream it is given: wrap it so the file can still be flushed to disk.
            WriteDurably(Path.Combine(temp, ModelFile), s => model.save(new KeepOpenStream(s)));
            WriteDurably(Path.Combine(temp, OptimizerFile), s =>
            {
                using var writer = new BinaryWriter(s, System.Text.Encoding.UTF8, leaveOpen: true);
                optimizer.save_state_dict(writer);
            });
            WriteDurably(Path.Combine(temp, StateFile), s => JsonSerializer.Serialize(s, state, RunConfig.Json));
            var checksums = new[] { ModelFile, OptimizerFile, StateFile }.ToDictionary(f => f, f => Hash(Path.Combine(temp, f)));
            WriteDurably(Path.Combine(temp, ChecksumFile), s => JsonSerializer.Serialize(s, checksums));
            if (System.IO.Directory.Exists(final)) Retire(final);   // a damaged one of the same step
            System.IO.Directory.Move(temp, final);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new IOException($"could not write checkpoint step {state.Step} in '{root}': {e.Message}. Earlier checkpoints are kept.", e);
        }
        Retain(root, Math.Max(2, keep), final);
        return final;
    }

    /// <summary>
    /// Keeps the newest <paramref name="keep"/> intact checkpoints and deletes the older ones. Damaged checkpoints
    /// never count as kept (a run restarted after they failed would otherwise delete its own new ones); those newer
    /// than the kept ones stay for inspection until a save of the same step replaces them. A checkpoint is renamed before
    /// it is deleted file by file: <c>eval</c> or <c>sample</c> reading the run meanwhile never finds a partial one.
    /// </summary>
    static void Retain(string root, int keep, string justWritten)
    {
        var intact = 0;
        foreach (var candidate in Complete(root))
        {
            if (intact >= keep) Retire(candidate);
            else if (candidate == justWritten || IsIntact(candidate)) intact++;
        }
    }

    static void Retire(string directory)
    {
        var retired = Path.Combine(Path.GetDirectoryName(directory)!, $"{RetiredPrefix}{Path.GetFileName(directory)}-{Environment.ProcessId}");
        try
        {
            System.IO.Directory.Move(directory, retired);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;   // still whole; retried at the next save
        }
        TryDelete(retired);
    }

    static bool IsIntact(string directory)
    {
        try
        {
            Open(directory);
            return true;
        }
        catch (CheckpointException)
        {
            return false;
        }
    }

    /// <summary>
    /// The newest intact checkpoint of a run directory (or the given checkpoint folder itself). Damaged or
    /// incomplete ones are reported through <paramref name="warn"/> and skipped, so the previous good one is used.
    /// A checkpoint that vanishes while it is read was retired by a training running in the run: the folder is listed
    /// again, once, to find the newer one.
    /// </summary>
    /// <param name="path">A run directory or one checkpoint folder.</param>
    /// <param name="warn">Receives one line per skipped checkpoint.</param>
    /// <returns>The checkpoint, or null when there is none.</returns>
    public static Checkpoint? Latest(string path, Action<string>? warn = null)
    {
        if (File.Exists(Path.Combine(path, StateFile))) return Open(path);
        var root = Path.Combine(path, FolderName);
        if (!System.IO.Directory.Exists(root)) return null;
        for (var listing = 0; listing < 2; listing++)
        {
            var vanished = false;
            foreach (var candidate in Complete(root))
            {
                try
                {
                    return Open(candidate);
                }
                catch (CheckpointException) when (listing == 0 && !System.IO.Directory.Exists(candidate))
                {
                    vanished = true;
                    break;
                }
                catch (CheckpointException e)
                {
                    warn?.Invoke($"{e.Message} Falling back to the previous checkpoint.");
                }
            }
            if (!vanished) break;
        }
        return null;
    }

    /// <summary>Opens one checkpoint folder after verifying its checksums.</summary>
    /// <param name="directory">A <c>step-NNNNNN</c> folder.</param>
    /// <exception cref="CheckpointException">A file is missing or does not match its checksum.</exception>
    public static Checkpoint Open(string directory)
    {
        try
        {
            return Verify(directory);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            // Gone between the check for it and the read: retired by a training running in this run.
            throw new CheckpointException($"checkpoint '{directory}' is incomplete: {e.Message}", e);
        }
    }

    static Checkpoint Verify(string directory)
    {
        var checksumPath = Path.Combine(directory, ChecksumFile);
        if (!File.Exists(checksumPath))
            throw new CheckpointException($"checkpoint '{directory}' is incomplete: {ChecksumFile} is missing.");
        Dictionary<string, string> checksums;
        try
        {
            checksums = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(checksumPath)) ?? [];
        }
        catch (JsonException)
        {
            throw new CheckpointException($"checkpoint '{directory}' is corrupt: {ChecksumFile} is not valid JSON.");
        }
        foreach (var file in new[] { ModelFile, OptimizerFile, StateFile })
        {
            var full = Path.Combine(directory, file);
            if (!File.Exists(full))
                throw new CheckpointException($"checkpoint '{directory}' is incomplete: {file} is missing.");
            if (!checksums.TryGetValue(file, out var expected) || expected != Hash(full))
                throw new CheckpointException($"checkpoint file '{full}' is corrupt (SHA-256 does not match).");
        }
        return new Checkpoint(directory, ReadState(Path.Combine(directory, StateFile)));
    }

    /// <summary>Reads <c>state.json</c> and checks every field: a file that passes its checksum can still have been written wrong.</summary>
    static CheckpointState ReadState(string path)
    {
        CheckpointState? state;
        try
        {
            state = JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(path), RunConfig.Json);
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"checkpoint file '{path}' is not a valid checkpoint state ({JsonMessages.Describe(e)}).", e);
        }
        void Require(bool ok, string problem)
        {
            if (!ok) throw new CheckpointException($"checkpoint file '{path}' is invalid: {problem}.");
        }
        Require(state is not null, "it is null");
        Require(state!.Step >= 0, $"step = {state.Step} is negative");
        Require(double.IsFinite(state.ElapsedS) && state.ElapsedS >= 0, $"elapsed_s = {state.ElapsedS} is not a time");
        Require(state.RngState.Length > 0 && Convert.TryFromBase64String(state.RngState, new byte[state.RngState.Length], out _), "rng_state is not base64");
        Require(state.Config is not null, "config is missing");
        try
        {
            state.Config!.Validate();
        }
        catch (ArgumentException e)
        {
            throw new CheckpointException($"checkpoint file '{path}' holds an invalid config: {e.Message}", e);
        }
        return state;
    }

    /// <summary>Loads the saved parameters into <paramref name="model"/>, which must have the checkpoint's architecture.</summary>
    /// <param name="model">Model built from <see cref="CheckpointState.Config"/>.</param>
    public void LoadModel(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        try
        {
            model.load(Path.Combine(Directory, ModelFile));
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
        {
            throw new CheckpointException($"checkpoint '{Directory}' does not fit this model: {e.Message}", e);
        }
    }

    /// <summary>Runs a load, turning a file that cannot be read back (truncated, wrong layout) into a <see cref="CheckpointException"/> naming it.</summary>
    static void Loading(string file, Action load)
    {
        try
        {
            load();
        }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException or FormatException or System.Runtime.InteropServices.ExternalException)
        {
            throw new CheckpointException($"checkpoint file '{file}' cannot be loaded: {e.Message}", e);
        }
    }

    /// <summary>Loads the optimizer state (moments, step counts).</summary>
    /// <param name="optimizer">Optimizer over the same parameters.</param>
    public void LoadOptimizer(OptimizerHelper optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        var file = Path.Combine(Directory, OptimizerFile);
        Loading(file, () =>
        {
            using var reader = new BinaryReader(File.OpenRead(file));
            optimizer.load_state_dict(reader);
        });
    }

    /// <summary>Restores TorchSharp's global RNG to the saved state.</summary>
    public void RestoreRng() => Loading(Path.Combine(Directory, StateFile), () =>
    {
        using var state = tensor(Convert.FromBase64String(State.RngState));
        torch.random.set_rng_state(state);
    });

    /// <summary>TorchSharp's global RNG state as base64, for <see cref="CheckpointState.RngState"/>.</summary>
    public static string CaptureRng()
    {
        using var state = torch.random.get_rng_state();
        return Convert.ToBase64String(state.data<byte>().ToArray());
    }

    /// <summary>The <c>step-N</c> folders, newest step first (by number: names stop sorting by step past step 999,999).</summary>
    static List<string> Complete(string root) =>
        System.IO.Directory.EnumerateDirectories(root, "step-*")
            .Select(d => (Directory: d, Step: long.TryParse(Path.GetFileName(d)["step-".Length..], System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var step) ? step : -1))
            .Where(c => c.Step >= 0)
            .OrderByDescending(c => c.Step)
            .Select(c => c.Directory)
            .ToList();

    static void WriteDurably(string path, Action<Stream> write)
    {
        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        write(stream);
        stream.Flush(flushToDisk: true);
    }

    static string Hash(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    static void TryDelete(string directory)
    {
        try
        {
            if (System.IO.Directory.Exists(directory)) System.IO.Directory.Delete(directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: a leftover folder is ignored by Latest and retried next time.
        }
    }

    /// <summary>Forwards writes but ignores Dispose, for APIs that close the stream they are handed.</summary>
    sealed class KeepOpenStream(Stream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void SetLength(long value) => inner.SetLength(value);
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
        public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);
        protected override void Dispose(bool disposing)
        {
            inner.Flush();
            base.Dispose(disposing);
        }
    }
}
