using System.Security.Cryptography;
using System.Text;

namespace Mhc.Data;

/// <summary>
/// Loads a UTF-8 text file, or every .txt file under a folder (in ordinal path order), tokenises it and
/// holds out the end as validation. Tokens are cached by content fingerprint so a second run does not
/// re-tokenise. Bad files fail with one message naming the file and the problem.
/// </summary>
public static class TextCorpus
{
    const string CacheMagic = "MHCTOK1";

    /// <summary>Loads and splits a corpus.</summary>
    /// <param name="path">A text file or a folder of .txt files.</param>
    /// <param name="tokenizer">Tokenizer.</param>
    /// <param name="validationFraction">Share of the tokens, from the end, kept for validation.</param>
    /// <param name="sequenceLength">Model context; each split must hold at least one window of it.</param>
    /// <param name="cacheDirectory">Folder for cached tokens; null disables caching.</param>
    /// <exception cref="FileNotFoundException">The path does not exist.</exception>
    /// <exception cref="InvalidDataException">A file is empty, binary, not UTF-8, or the corpus is too short.</exception>
    public static TokenCorpus Load(string path, ITextTokenizer tokenizer, double validationFraction, int sequenceLength, string? cacheDirectory)
    {
        var (tokens, name) = Tokens(path, tokenizer, cacheDirectory);

        var validation = (int)Math.Round(tokens.Length * validationFraction);
        var needed = sequenceLength + 1;
        if (validation < needed || tokens.Length - validation < needed)
            throw new InvalidDataException(
                $"data '{path}' has {tokens.Length:N0} {tokenizer.Name} tokens: too short for seq_len = {sequenceLength} " +
                $"(each of the training and validation parts, {1 - validationFraction:P0} / {validationFraction:P0}, needs at least {needed} tokens).");
        return new TokenCorpus
        {
            Description = $"{name} ({tokenizer.Name}, {tokens.Length:N0} tokens: {tokens.Length - validation:N0} train / {validation:N0} validation)",
            TokenizerName = tokenizer.Name,
            VocabSize = tokenizer.VocabSize,
            Train = tokens[..^validation],
            Validation = tokens[^validation..],
        };
    }

    /// <summary>
    /// Every token of the text at <paramref name="path"/> (a file, or the .txt files under a folder in ordinal order,
    /// separated by a blank line), and a short name of the source. Cached in <paramref name="cacheDirectory"/> by content.
    /// </summary>
    /// <param name="path">A UTF-8 text file or a folder.</param>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="cacheDirectory">Where tokenised text is cached (null = no cache).</param>
    public static (int[] Tokens, string Name) Tokens(string path, ITextTokenizer tokenizer, string? cacheDirectory)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var files = Files(path);
        var contents = files.Select(ReadText).ToList();
        var fingerprint = Fingerprint(tokenizer.Name, files, contents);
        var cachePath = cacheDirectory is null ? null : System.IO.Path.Combine(cacheDirectory, $"{fingerprint}.{tokenizer.Name}.tokens");
        var tokens = (cachePath is null ? null : ReadCache(cachePath, tokenizer.VocabSize)) ?? Tokenize(tokenizer, contents, cachePath);
        return (tokens, files.Count == 1 ? System.IO.Path.GetFileName(files[0]) : $"{files.Count} files under {path}");
    }

    static List<string> Files(string path)
    {
        if (File.Exists(path)) return [System.IO.Path.GetFullPath(path)];
        if (Directory.Exists(path))
        {
            List<string> files;
            try
            {
                files = TextFiles(new DirectoryInfo(path)).Order(StringComparer.Ordinal).ToList();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InvalidDataException($"data folder '{path}' cannot be read: {e.Message}", e);
            }
            return files.Count > 0 ? files : throw new InvalidDataException($"data folder '{path}' contains no .txt files.");
        }
        throw new FileNotFoundException($"data path '{path}' does not exist.", path);
    }

    /// <summary>
    /// The .txt files under <paramref name="folder"/>. Links to folders are not followed: <c>self -> .</c> or
    /// <c>up -> ..</c> would loop forever or read the same files again.
    /// </summary>
    static IEnumerable<string> TextFiles(DirectoryInfo folder)
    {
        foreach (var file in folder.EnumerateFiles("*.txt")) yield return file.FullName;
        foreach (var sub in folder.EnumerateDirectories())
            if (sub.LinkTarget is null)
                foreach (var file in TextFiles(sub)) yield return file;
    }

    static string ReadText(string file)
    {
        byte[] bytes;
        try
        {
            bytes = ReadRegularFile(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"data file '{file}' cannot be read: {e.Message}", e);
        }
        var nul = Array.IndexOf(bytes, (byte)0);
        if (nul >= 0) throw new InvalidDataException($"data file '{file}' looks binary (a NUL byte at offset {nul:N0}); expected UTF-8 text.");
        try
        {
            var text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes);
            return text.StartsWith('\uFEFF') ? text[1..] : text;
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"data file '{file}' is not valid UTF-8 (bad byte at offset {e.Index:N0}).", e);
        }
    }

    /// <summary>
    /// The bytes of a regular file. Devices, pipes and /proc entries report no length but never end (<c>/dev/zero</c>
    /// would fill memory): they are refused, as are files beyond what one array holds.
    /// </summary>
    static byte[] ReadRegularFile(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read);
        if (!stream.CanSeek || stream.Length == 0)
        {
            if (!stream.CanSeek || stream.ReadByte() >= 0)
                throw new InvalidDataException($"data file '{file}' is not a regular file (a device, pipe or /proc entry); expected a UTF-8 text file or a folder of .txt files.");
            throw new InvalidDataException($"data file '{file}' is empty.");
        }
        if (stream.Length > Array.MaxLength)
            throw new InvalidDataException($"data file '{file}' has {stream.Length:N0} bytes: more than one file may have ({Array.MaxLength:N0}); split it into a folder of .txt files.");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    static string Fingerprint(string tokenizer, List<string> files, List<string> contents)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(tokenizer));
        for (var i = 0; i < files.Count; i++)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(System.IO.Path.GetFileName(files[i])));
            hash.AppendData(Encoding.UTF8.GetBytes(contents[i]));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }

    static int[] Tokenize(ITextTokenizer tokenizer, List<string> contents, string? cachePath)
    {
        // Files are separated by a blank line so no token spans two files.
        var tokens = tokenizer.Encode(string.Join("\n\n", contents));
        if (cachePath is not null) WriteCache(cachePath, tokens);
        return tokens;
    }

    /// <summary>Cached tokens, or null when there are none or they cannot be trusted (then the text is tokenised again and the cache rewritten).</summary>
    static int[]? ReadCache(string path, int vocabSize)
    {
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path));
            if (reader.ReadString() != CacheMagic) return null;
            var count = reader.ReadInt32();
            if (count < 0 || reader.BaseStream.Length != reader.BaseStream.Position + 4L * count) return null;
            var tokens = new int[count];
            reader.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(tokens.AsSpan()));
            // A damaged cache with ids outside the vocabulary would break every later run on this data inside the embedding.
            foreach (var id in tokens)
                if ((uint)id >= (uint)vocabSize) return null;
            return tokens;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;   // missing or unreadable cache: tokenise again
        }
    }

    static void WriteCache(string path, int[] tokens)
    {
        try
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
            var temp = $"{path}.{Environment.ProcessId}.tmp";
            using (var writer = new BinaryWriter(File.Create(temp)))
            {
                writer.Write(CacheMagic);
                writer.Write(tokens.Length);
                writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(tokens.AsSpan()));
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A cache that cannot be written only costs time next run.
        }
    }
}
