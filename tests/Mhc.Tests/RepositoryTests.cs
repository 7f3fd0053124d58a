using System.Text.RegularExpressions;

namespace Mhc.Tests;

/// <summary>
/// The repository stands alone: nothing a newcomer runs or reads as a command names a file outside it.
/// </summary>
/// <remarks>
/// <para>Scanned: every test source (<c>tests/**/*.cs</c> outside <c>bin/</c> and <c>obj/</c>, except this
/// file, whose examples name such paths on purpose), every fenced code block of <c>README.md</c> and
/// <c>docs/**/*.md</c>, and every file of <c>.ci/</c>.</para>
/// <para>The rule, applied to each path-like word (a run of letters, digits and <c>_ . - + ~ @ / \</c>):</para>
/// <list type="bullet">
/// <item>A relative path is resolved from the repository root, segment by segment, without touching the disk
/// (in <c>.ci/</c> scripts <c>$(dirname "$0")</c> stands for the script's folder). It fails if it ever climbs
/// above the root: <c>../sibling/data/x</c>, <c>src/../../x</c>, and a quoted <c>".."</c> (as in
/// <c>Path.Combine(root, "..", "sibling")</c>). A <c>..</c> with no separator and no quotes around it is C#
/// (<c>[.. args]</c>, <c>text[..200]</c>), not a path.</item>
/// <item>An absolute path (a word starting with a single <c>/</c>, not right after <c>&lt; } ) ] * :</c>) passes
/// only under the system folders every Linux machine has: <c>/tmp /dev /proc /sys /usr /bin /sbin /lib /lib32
/// /lib64 /etc</c>. Anything else (<c>/work</c>, <c>/home</c>, <c>/root</c>, <c>/mnt</c>, <c>/opt</c>, ...) is
/// one machine's layout and fails.</item>
/// <item>Not judged: <c>~</c> and variables (<c>$HOME</c>, <c>{dir}</c>), which each machine resolves for
/// itself, and URLs (<c>//</c>).</item>
/// </list>
/// </remarks>
public class RepositoryTests
{
    static readonly HashSet<string> SystemFolders = ["tmp", "dev", "proc", "sys", "usr", "bin", "sbin", "lib", "lib32", "lib64", "etc"];

    static readonly Regex PathWord = new(@"[\w.\-+~@/\\]+", RegexOptions.CultureInvariant);

    /// <summary>The paths in <paramref name="text"/> that lie outside the repository, each with the reason.</summary>
    /// <param name="text">Source text, a code block or a script.</param>
    /// <param name="scriptFolder">For a script: its folder relative to the root, which <c>$(dirname "$0")</c> names.</param>
    internal static List<string> OutsidePaths(string text, string? scriptFolder = null)
    {
        if (scriptFolder is not null)
            text = text.Replace("$(dirname \"$0\")", scriptFolder, StringComparison.Ordinal)
                       .Replace("$(dirname \"${BASH_SOURCE[0]}\")", scriptFolder, StringComparison.Ordinal);
        var found = new List<string>();
        foreach (Match word in PathWord.Matches(text))
        {
            var path = word.Value;
            var before = word.Index > 0 ? text[word.Index - 1] : '\n';
            var after = word.Index + path.Length < text.Length ? text[word.Index + path.Length] : '\n';
            if (path.StartsWith("//", StringComparison.Ordinal) || path.StartsWith("\\\\", StringComparison.Ordinal)) continue;
            var segments = path.Split('/', '\\');
            if (path.StartsWith('/'))
            {
                if ("<})]*:".Contains(before, StringComparison.Ordinal) || segments.Length < 2 || segments[1].Length == 0) continue;
                if (!SystemFolders.Contains(segments[1])) found.Add($"{path} (an absolute path outside the system folders)");
                continue;
            }
            var quoted = before is '"' or '\'' or '`' && after == before;
            if (segments.Length == 1 && !(path == ".." && quoted)) continue;
            var depth = 0;
            foreach (var segment in segments)
            {
                if (segment is "" or ".") continue;
                depth += segment == ".." ? -1 : 1;
                if (depth < 0)
                {
                    found.Add($"{path} (climbs above the repository root)");
                    break;
                }
            }
        }
        return found;
    }

    [Theory]
    [InlineData("../sibling/data/tinyshakespeare.txt")]
    [InlineData("mhc compare --data ../sibling/data/tinyshakespeare.txt --tokenizer byte")]
    [InlineData("Path.Combine(RepositoryRoot, \"..\", \"sibling\", \"data\", name)")]
    [InlineData("var p = \"..\\\\sibling\\\\data\";")]
    [InlineData("src/../../x")]
    [InlineData("cat /work/sibling/data/tinyshakespeare.txt")]
    [InlineData("--out=/home/someone/runs")]
    [InlineData("\"/root/.nuget/packages\"")]
    [InlineData("/// <summary>A file of <c>/work/sibling</c>.</summary>")]
    public void Paths_outside_the_repository_are_found(string text) => Assert.Single(OutsidePaths(text));

    [Theory]
    [InlineData("dotnet run -c Release --project src/Mhc.Cli -- compare --data data/tinyshakespeare.txt")]
    [InlineData("src/../data/tinyshakespeare.txt")]
    [InlineData("Path.Combine(TestPaths.RepositoryRoot, \"data\", name)")]
    [InlineData("CliApp.Run([.. args, \"--out\", dir]); var head = text[..200]; var tail = list[..^1];")]
    [InlineData("#!/usr/bin/env bash")]
    [InlineData("ls > /dev/null; cat /proc/self/status /etc/os-release; cd /tmp/x; /usr/bin/readelf -V")]
    [InlineData("/// <summary>Runs <c>mhc</c>.</summary> <see cref=\"X\"/>")]
    [InlineData("see https://github.com/dotnet/TorchSharp/issues/1434 and file:///tmp")]
    [InlineData("mount -t tmpfs tmpfs '{disk}/run' && ls ~/.nuget/packages $HOME/x ${ROOT}/y")]
    [InlineData("a / b; H_pre/H_post; (n - 1)/2; runs/compare-*/")]
    public void Paths_inside_the_repository_or_the_system_pass(string text) => Assert.Empty(OutsidePaths(text));

    [Fact]
    public void A_script_climbs_from_its_own_folder()
    {
        Assert.Empty(OutsidePaths("cd \"$(dirname \"$0\")/..\"", scriptFolder: ".ci"));
        Assert.Single(OutsidePaths("cd \"$(dirname \"$0\")/../..\"", scriptFolder: ".ci"));
    }

    [Fact]
    public void No_test_readme_doc_or_ci_script_names_a_path_outside_the_repository()
    {
        var root = TestPaths.RepositoryRoot;
        var problems = new List<string>();
        void Check(string file, int firstLine, IEnumerable<string> lines, string? scriptFolder = null)
        {
            var number = firstLine;
            foreach (var line in lines)
            {
                problems.AddRange(OutsidePaths(line, scriptFolder).Select(p => $"{Path.GetRelativePath(root, file)}:{number}: {p}"));
                number++;
            }
        }

        var sources = Directory.EnumerateFiles(Path.Combine(root, "tests"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
            .Where(f => Path.GetFileName(f) != nameof(RepositoryTests) + ".cs")
            .ToList();
        Assert.True(sources.Count >= 20, $"found only {sources.Count} test sources under tests/");
        foreach (var file in sources) Check(file, 1, File.ReadLines(file));

        var markdown = new List<string> { Path.Combine(root, "README.md") };
        if (Directory.Exists(Path.Combine(root, "docs")))
            markdown.AddRange(Directory.EnumerateFiles(Path.Combine(root, "docs"), "*.md", SearchOption.AllDirectories));
        var blocks = 0;
        foreach (var file in markdown)
            foreach (var (firstLine, lines) in FencedBlocks(File.ReadAllLines(file)))
            {
                blocks++;
                Check(file, firstLine, lines);
            }
        Assert.True(blocks >= 2, $"found only {blocks} fenced code blocks in README.md and docs/");

        var ci = Directory.GetFiles(Path.Combine(root, ".ci"));
        Assert.Contains(Path.Combine(root, ".ci", "run"), ci);
        foreach (var file in ci) Check(file, 1, File.ReadLines(file), scriptFolder: ".ci");

        Assert.True(problems.Count == 0, "paths outside the repository:\n" + string.Join('\n', problems));
    }

    [Fact]
    public void The_corpus_is_in_the_repository()
    {
        var corpus = TestPaths.Data("tinyshakespeare.txt");
        Assert.StartsWith(TestPaths.RepositoryRoot + Path.DirectorySeparatorChar, corpus, StringComparison.Ordinal);
        Assert.True(File.Exists(corpus), $"{corpus} is missing");
    }

    /// <summary>The fenced code blocks of a Markdown file: the line number of each block's first line, and its lines.</summary>
    static IEnumerable<(int FirstLine, string[] Lines)> FencedBlocks(string[] lines)
    {
        var open = -1;
        for (var i = 0; i < lines.Length; i++)
        {
            var trimmed = lines[i].TrimStart();
            if (!trimmed.StartsWith("```", StringComparison.Ordinal) && !trimmed.StartsWith("~~~", StringComparison.Ordinal)) continue;
            if (open < 0)
            {
                open = i;
            }
            else
            {
                yield return (open + 2, lines[(open + 1)..i]);
                open = -1;
            }
        }
        Assert.True(open < 0, $"a code block opened on line {open + 1} is never closed");
    }
}
