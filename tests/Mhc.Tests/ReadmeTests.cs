using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Mhc.Cli;

namespace Mhc.Tests;

/// <summary>Keeps the README honest: its quick-start commands run, and CI runs its test command, then the slow lane.</summary>
public class ReadmeTests
{
    const string CliPrefix = "dotnet run -c Release --project src/Mhc.Cli -- ";

    static List<string> QuickStartCommands()
    {
        var lines = File.ReadAllLines(Path.Combine(TestPaths.RepositoryRoot, "README.md"));
        var start = Array.FindIndex(lines, l => l.StartsWith("## Quick start", StringComparison.Ordinal));
        var open = Array.FindIndex(lines, start, l => l.StartsWith("```", StringComparison.Ordinal));
        var close = Array.FindIndex(lines, open + 1, l => l.StartsWith("```", StringComparison.Ordinal));
        return lines[(open + 1)..close].Select(l => l.Split('#')[0].Trim()).Where(l => l.Length > 0).ToList();
    }

    [Fact]
    public void Quick_start_has_two_commands_and_ci_runs_the_test_one_then_the_slow_lane()
    {
        var commands = QuickStartCommands();
        Assert.Equal(2, commands.Count);
        Assert.StartsWith(CliPrefix, commands[0], StringComparison.Ordinal);
        var test = commands[1];
        Assert.StartsWith("dotnet test", test, StringComparison.Ordinal);
        var ci = File.ReadAllLines(Path.Combine(TestPaths.RepositoryRoot, ".ci", "run"));
        Assert.Contains(test, ci);
        Assert.Contains("--filter \"Category!=Slow\"", test, StringComparison.Ordinal);
        var slowLane = test.Replace("Category!=Slow", "Category=Slow", StringComparison.Ordinal);
        Assert.True(Array.IndexOf(ci, slowLane) > Array.IndexOf(ci, test), ".ci/run runs the slow lane after the fast one");
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void Quick_start_main_command_runs_with_a_tiny_step_count()
    {
        using var temp = TestPaths.Temp();
        var args = QuickStartCommands()[0][CliPrefix.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        if (args[0] is "train" or "compare") args.AddRange(["--steps", "2", "--out", Path.Combine(temp.Path, "run")]);
        Assert.Equal(0, CliApp.Run([.. args]));
    }

    /// <summary>The first C# block of the README's "Using the library" section, as a user would paste it into a console app.</summary>
    static string LibraryExample()
    {
        var lines = File.ReadAllLines(Path.Combine(TestPaths.RepositoryRoot, "README.md"));
        var start = Array.FindIndex(lines, l => l.StartsWith("## Using the library", StringComparison.Ordinal));
        var open = Array.FindIndex(lines, start, l => l.StartsWith("```csharp", StringComparison.Ordinal));
        var close = Array.FindIndex(lines, open + 1, l => l.StartsWith("```", StringComparison.Ordinal));
        return string.Join('\n', lines[(open + 1)..close]);
    }

    [Fact]
    public void Library_example_compiles_and_runs()
    {
        // A console app with the SDK's implicit usings, referencing what this test host references (MhcNet, TorchSharp, the framework).
        var trees = new[]
        {
            CSharpSyntaxTree.ParseText(LibraryExample(), path: "README.md"),
            CSharpSyntaxTree.ParseText("global using System; global using System.Collections.Generic; global using System.Linq;"),
        };
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(File.Exists).Select(path => MetadataReference.CreateFromFile(path));
        var compilation = CSharpCompilation.Create("ReadmeExample", trees, references,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        using var image = new MemoryStream();
        var emitted = compilation.Emit(image);
        Assert.True(emitted.Success, "the README's library example does not compile:\n" +
            string.Join("\n", emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
        var entry = Assembly.Load(image.ToArray()).EntryPoint!;
        var output = new StringWriter();
        var console = Console.Out;
        Console.SetOut(output);
        try
        {
            entry.Invoke(null, entry.GetParameters().Length == 0 ? null : [Array.Empty<string>()]);
        }
        finally
        {
            Console.SetOut(console);
        }
        Assert.Contains("H_res of sub-layer 0: 4×4 per token", output.ToString(), StringComparison.Ordinal);
    }
}
