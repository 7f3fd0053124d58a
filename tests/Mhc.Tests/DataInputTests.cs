using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Mhc.Cli;
using Mhc.Data;
using Mhc.Training;
using SkiaSharp;
using static Mhc.Tests.InProcessCli;

namespace Mhc.Tests;

/// <summary>Hostile data (issue 25, items 3, 4, 7, 8, 13, 15, 21): damaged token caches, folder links, devices, small or oversized image sets, data changed under a run.</summary>
public class DataInputTests
{
    [Fact]
    public void A_token_cache_with_ids_outside_the_vocabulary_is_replaced_by_a_fresh_tokenisation()
    {
        using var temp = TestPaths.Temp();
        var text = temp.File("a.txt");
        File.WriteAllText(text, "hello, hostile world. " + new string('x', 200));
        var cache = temp.File("cache");
        var tokenizer = Tokenizers.Create("byte");
        var (expected, _) = TextCorpus.Tokens(text, tokenizer, cache);
        var file = Directory.GetFiles(cache).Single();
        var bytes = File.ReadAllBytes(file);
        BitConverter.GetBytes(99_999).CopyTo(bytes, bytes.Length - 4);   // the last id, far outside 256
        File.WriteAllBytes(file, bytes);

        var (tokens, _) = TextCorpus.Tokens(text, tokenizer, cache);
        Assert.Equal(expected, tokens);
        Assert.Equal(expected, TextCorpus.Tokens(text, tokenizer, cache).Tokens);
        Assert.NotEqual(bytes, File.ReadAllBytes(file));   // the cache was rewritten
    }

    [FactWhen(Requirement.Linux)]
    public void Links_to_folders_are_not_followed()
    {
        using var temp = TestPaths.Temp();
        var data = temp.File("data");
        Directory.CreateDirectory(Path.Combine(data, "sub"));
        File.WriteAllText(Path.Combine(data, "a.txt"), "first file");
        File.WriteAllText(Path.Combine(data, "sub", "b.txt"), "second file");
        Directory.CreateSymbolicLink(Path.Combine(data, "self"), ".");
        Directory.CreateSymbolicLink(Path.Combine(data, "sub", "up"), data);   // a link up the tree, like "up -> .."
        var (tokens, name) = TextCorpus.Tokens(data, Tokenizers.Create("byte"), null);
        Assert.Equal($"2 files under {data}", name);
        Assert.Equal("first file\n\nsecond file".Length, tokens.Length);
    }

    [FactWhen(Requirement.Linux)]
    public void A_device_as_data_is_refused_as_not_a_regular_file()
    {
        using var temp = TestPaths.Temp();
        var (code, err) = Run(["train", "--data", "/dev/zero", "--tokenizer", "byte", "--steps", "1", "--out", temp.File("run")]);
        Assert.Equal(ExitCodes.DataError, code);
        Assert.StartsWith("error: data file '/dev/zero' is not a regular file", err, StringComparison.Ordinal);
    }

    [FactWhen(Requirement.Linux, Requirement.Unprivileged)]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void An_unreadable_data_folder_exits_3()
    {
        using var temp = TestPaths.Temp();
        var data = temp.File("locked");
        Directory.CreateDirectory(Path.Combine(data, "sub"));
        File.SetUnixFileMode(Path.Combine(data, "sub"), UnixFileMode.None);
        var (code, err) = Run(["train", "--data", data, "--steps", "1", "--out", temp.File("run")]);
        File.SetUnixFileMode(Path.Combine(data, "sub"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Assert.Equal(ExitCodes.DataError, code);
        Assert.Contains($"data folder '{data}' cannot be read", err, StringComparison.Ordinal);
    }

    static byte[] Png(int width, int height, bool noise)
    {
        using var bitmap = new SKBitmap(width, height);
        var rng = new SplitMix64(3);
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
                bitmap.SetPixel(x, y, noise ? new SKColor((byte)rng.NextInt64(256), (byte)rng.NextInt64(256), (byte)rng.NextInt64(256)) : SKColors.Gray);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    static string TwoClasses(TempDirectory temp, int perClass)
    {
        foreach (var name in new[] { "a", "b" })
        {
            Directory.CreateDirectory(temp.File(name));
            for (var i = 0; i < perClass; i++) File.WriteAllBytes(Path.Combine(temp.Path, name, $"{i}.png"), Png(4, 4, noise: false));
        }
        return temp.Path;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(9)]
    public void Small_classes_hold_out_one_image_each(int perClass)
    {
        using var temp = TestPaths.Temp();
        var data = ImageFolder.Load(TwoClasses(temp, perClass), 4, 0.1);
        Assert.Equal([0, 1], data.ValidationLabels);
        Assert.Equal(2 * (perClass - 1), data.TrainLabels.Length);
    }

    /// <summary>CRC-32 (IEEE) of a PNG chunk's type and data.</summary>
    static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }

    [Fact]
    public void Oversized_and_truncated_images_are_refused_naming_the_file()
    {
        using var temp = TestPaths.Temp();
        var root = TwoClasses(temp, 2);
        var huge = Png(4, 4, noise: false);
        // IHDR: width and height at bytes 16..23, its CRC at 29..32 over bytes 12..28.
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(huge.AsSpan(16), 100_000);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(huge.AsSpan(20), 100_000);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(huge.AsSpan(29), Crc32(huge.AsSpan(12, 17)));
        var hugeFile = Path.Combine(root, "a", "huge.png");
        File.WriteAllBytes(hugeFile, huge);
        var error = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(root, 4, 0.5));
        Assert.Equal($"image file '{hugeFile}' is 100000×100000 pixels: allowed 1..16384 on each side.", error.Message);

        File.Delete(hugeFile);
        var whole = Png(64, 64, noise: true);
        var truncated = Path.Combine(root, "b", "truncated.png");
        File.WriteAllBytes(truncated, whole[..(whole.Length / 2)]);
        error = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(root, 4, 0.5));
        Assert.Contains($"image file '{truncated}' is incomplete", error.Message, StringComparison.Ordinal);
    }

    static string Sentences(int variant) =>
        string.Concat(Enumerable.Range(0, 300).Select(i => $"line {i}: the {(i * 7 + variant) % 13} cats sat on mat {i % 5}.\n"));

    /// <summary>A text file and a run of 2 steps trained on it.</summary>
    static (string Data, string Run) TrainedOnText(TempDirectory temp)
    {
        var data = temp.File("corpus.txt");
        File.WriteAllText(data, Sentences(0));
        var run = temp.File("run");
        Assert.Equal(0, Run(["train", "--data", data, "--tokenizer", "byte", "--steps", "2", "--out", run,
            "--layers", "1", "--d-model", "32", "--heads", "2", "--seq-len", "16", "--batch-size", "4"]).Code);
        return (data, run);
    }

    [Fact]
    public void Data_changed_since_training_is_refused_on_resume_and_named_in_a_warning_by_eval()
    {
        using var temp = TestPaths.Temp();
        var (data, run) = TrainedOnText(temp);
        var state = Checkpoint.Latest(run)!.State;
        Assert.StartsWith("sha256:", state.DataFingerprint, StringComparison.Ordinal);
        var same = Run(["train", "--out", run, "--resume"]);
        Assert.Equal(0, same.Code);
        Assert.DoesNotContain("changed", same.Err, StringComparison.Ordinal);

        File.WriteAllText(data, Sentences(1));   // same length, other text
        var resumed = Run(["train", "--out", run, "--resume"]);
        Assert.Equal(ExitCodes.DataError, resumed.Code);
        var error = Assert.Single(resumed.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: data '", error, StringComparison.Ordinal);
        Assert.Contains("corpus.txt' has changed since run directory", error, StringComparison.Ordinal);

        var evaluated = Run(["eval", "--checkpoint", run]);
        Assert.Equal(0, evaluated.Code);
        var warning = Assert.Single(evaluated.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("warning: data '", warning, StringComparison.Ordinal);
        Assert.Contains("corpus.txt' has changed since checkpoint", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void A_run_from_before_data_fingerprints_is_resumed_and_evaluated_without_a_check()
    {
        using var temp = TestPaths.Temp();
        var (data, run) = TrainedOnText(temp);
        // As written before fingerprints were kept: no data_fingerprint in state.json, checksums to match.
        var checkpoint = Checkpoint.Latest(run)!.Directory;
        var statePath = Path.Combine(checkpoint, "state.json");
        var json = JsonNode.Parse(File.ReadAllText(statePath))!.AsObject();
        Assert.True(json.Remove("data_fingerprint"));
        var bytes = System.Text.Encoding.UTF8.GetBytes(json.ToJsonString());
        File.WriteAllBytes(statePath, bytes);
        var sumsPath = Path.Combine(checkpoint, "checksums.json");
        var sums = JsonNode.Parse(File.ReadAllText(sumsPath))!.AsObject();
        sums["state.json"] = Convert.ToHexStringLower(SHA256.HashData(bytes));
        File.WriteAllText(sumsPath, sums.ToJsonString());
        Assert.Null(Checkpoint.Latest(run)!.State.DataFingerprint);

        File.WriteAllText(data, Sentences(1));
        Assert.Equal((0, ""), Run(["eval", "--checkpoint", run]));
        Assert.Equal(0, Run(["train", "--out", run, "--resume"]).Code);
    }
}

