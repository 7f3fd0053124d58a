using System.Text;
using Mhc.Data;

namespace Mhc.Tests;

public class TextCorpusTests
{
    static readonly ITextTokenizer Bytes = new ByteTokenizer();

    [Fact]
    public void Tinyshakespeare_tokenises_offline_with_gpt2()
    {
        var path = TestPaths.Data("tinyshakespeare.txt");
        var corpus = TextCorpus.Load(path, new Gpt2Tokenizer(), 0.1, 64, cacheDirectory: null);
        Assert.Equal(338_025, corpus.Train.Length + corpus.Validation.Length);
        Assert.Equal(33_802, corpus.Validation.Length);
        Assert.Equal(50_257, corpus.VocabSize);
        var text = File.ReadAllText(path);
        Assert.Equal(text[..200], new Gpt2Tokenizer().Decode(corpus.Train.Take(120))[..200]);
    }

    [Fact]
    public void Split_is_the_tail_and_the_cache_is_reused()
    {
        using var temp = TestPaths.Temp();
        var file = temp.File("a.txt");
        File.WriteAllText(file, string.Concat(Enumerable.Repeat("hello world ", 50)));
        var cache = Path.Combine(temp.Path, "cache");
        var first = TextCorpus.Load(file, Bytes, 0.2, 8, cache);
        Assert.Equal(600, first.Train.Length + first.Validation.Length);
        Assert.Equal(120, first.Validation.Length);
        Assert.Equal(Encoding.UTF8.GetBytes(File.ReadAllText(file)).Skip(480).Select(b => (int)b), first.Validation);
        var cached = Assert.Single(Directory.GetFiles(cache));
        // Prove the second load reads the cache: tamper with one cached token.
        var bytes = File.ReadAllBytes(cached);
        BitConverter.GetBytes((int)'Z').CopyTo(bytes, bytes.Length - 4);
        File.WriteAllBytes(cached, bytes);
        Assert.Equal('Z', TextCorpus.Load(file, Bytes, 0.2, 8, cache).Validation[^1]);
        // A changed file has a new fingerprint: tokenised again.
        File.AppendAllText(file, "!");
        Assert.Equal('!', TextCorpus.Load(file, Bytes, 0.2, 8, cache).Validation[^1]);
    }

    [Fact]
    public void Folder_reads_txt_files_in_ordinal_order()
    {
        using var temp = TestPaths.Temp();
        Directory.CreateDirectory(temp.File("sub"));
        File.WriteAllText(temp.File("b.txt"), new string('b', 40));
        File.WriteAllText(Path.Combine(temp.Path, "sub", "c.txt"), new string('c', 40));
        File.WriteAllText(temp.File("a.txt"), new string('a', 40));
        File.WriteAllText(temp.File("skip.md"), "not text data");
        var corpus = TextCorpus.Load(temp.Path, Bytes, 0.25, 8, null);
        var text = new string(corpus.Train.Concat(corpus.Validation).Select(t => (char)t).ToArray());
        Assert.Equal(new string('a', 40) + "\n\n" + new string('b', 40) + "\n\n" + new string('c', 40), text);
    }

    [Fact]
    public void Bad_files_fail_with_a_message_naming_the_file()
    {
        using var temp = TestPaths.Temp();
        var missing = temp.File("missing.txt");
        Assert.Contains(missing, Assert.Throws<FileNotFoundException>(() => TextCorpus.Load(missing, Bytes, 0.1, 8, null)).Message, StringComparison.Ordinal);

        var empty = temp.File("empty.txt");
        File.WriteAllBytes(empty, []);
        Assert.Contains($"'{empty}' is empty", Load(empty), StringComparison.Ordinal);

        var binary = temp.File("binary.txt");
        File.WriteAllBytes(binary, [0x41, 0x42, 0x00, 0x43]);
        Assert.Contains($"'{binary}' looks binary (a NUL byte at offset 2)", Load(binary), StringComparison.Ordinal);

        var latin1 = temp.File("latin1.txt");
        File.WriteAllBytes(latin1, [.. Encoding.ASCII.GetBytes("caf"), 0xE9, .. Encoding.ASCII.GetBytes(" au lait")]);
        Assert.Contains($"'{latin1}' is not valid UTF-8 (bad byte at offset 3)", Load(latin1), StringComparison.Ordinal);

        var shortFile = temp.File("short.txt");
        File.WriteAllText(shortFile, "just a few words");
        Assert.Contains("too short for seq_len = 64", Load(shortFile, 64), StringComparison.Ordinal);

        var noText = temp.File("folder");
        Directory.CreateDirectory(noText);
        Assert.Contains("contains no .txt files", Load(noText), StringComparison.Ordinal);
    }

    static string Load(string path, int seqLen = 8) =>
        Assert.Throws<InvalidDataException>(() => TextCorpus.Load(path, Bytes, 0.1, seqLen, null)).Message;
}
