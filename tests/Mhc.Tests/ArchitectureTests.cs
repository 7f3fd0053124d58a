using System.Text.RegularExpressions;

namespace Mhc.Tests;

/// <summary>
/// The library's namespaces point one way (docs/architecture.md, "Layers"): a namespace may use the ones below it and
/// those beside it at the same level of independence, never one above. Checked on the source, so it catches
/// <c>using</c> directives, fully qualified names and names relative to <c>Mhc</c> (<c>Kernels.X</c>) alike.
/// </summary>
public partial class ArchitectureTests
{
    /// <summary>Level of each namespace of src/Mhc; a namespace may use only namespaces of a lower level.</summary>
    static readonly Dictionary<string, int> Levels = new()
    {
        ["Mhc.IO"] = 0,            // atomic files: no tensors
        ["Mhc.Kernels"] = 0,       // span and tensor math on CPU tensors: no connection, no model
        ["Mhc"] = 1,               // the Sinkhorn projection
        ["Mhc.Data"] = 1,          // corpora, tokenizers, images, batches: no model
        ["Mhc.Connections"] = 2,   // residual / HC / mHC around any branch, reference and fused paths
        ["Mhc.Models"] = 3,        // GPT, ViT and their layers, built from connections
        ["Mhc.Diagnostics"] = 4,   // gains and coefficient statistics, read from connections
        ["Mhc.Interop"] = 4,       // weight files and layouts of models
        ["Mhc.Training"] = 5,      // tasks, trainer, checkpoints: uses everything below
    };

    [GeneratedRegex(@"^\s*namespace\s+([\w.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex NamespaceDeclaration();

    [GeneratedRegex(@"(?<![\w.])(?:global::)?(Mhc(?:\.\w+)?)(?=\s*;|\.\w)|(?<![\w.])(IO|Kernels|Data|Connections|Models|Diagnostics|Interop|Training)\.[A-Z]")]
    private static partial Regex NamespaceReference();

    /// <summary>Every reference from a library source file to a namespace of a higher level: "file: A uses B".</summary>
    static List<string> Violations(string root)
    {
        var violations = new List<string>();
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                || file.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)) continue;
            var text = File.ReadAllText(file);
            var declared = NamespaceDeclaration().Match(text);
            if (!declared.Success) continue;   // assembly attributes only: types outside a namespace do not build (CA1050)
            if (!Levels.TryGetValue(declared.Groups[1].Value, out var level))
            {
                violations.Add($"{Path.GetRelativePath(root, file)}: namespace {declared.Groups[1].Value} has no level; add it to the table");
                continue;
            }
            var body = text[(declared.Index + declared.Length)..];
            var usings = text[..declared.Index];
            foreach (Match m in NamespaceReference().Matches(usings + "\n" + body))
            {
                var used = m.Groups[1].Success ? m.Groups[1].Value : "Mhc." + m.Groups[2].Value;
                // "Mhc.Foo" where Foo is a type of the root namespace (Mhc.Sinkhorn) is the root namespace.
                var ns = Levels.ContainsKey(used) ? used : "Mhc";
                if (Levels[ns] > level)
                    violations.Add($"{Path.GetRelativePath(root, file)}: {declared.Groups[1].Value} (level {level}) uses {ns} (level {Levels[ns]})");
            }
        }
        return violations.Distinct().ToList();
    }

    [Fact]
    public void Library_namespaces_only_use_lower_ones()
    {
        var violations = Violations(Path.Combine(TestPaths.RepositoryRoot, "src", "Mhc"));
        Assert.True(violations.Count == 0, "namespaces that point up:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void The_check_sees_every_kind_of_reference()
    {
        using var temp = TestPaths.Temp();
        Directory.CreateDirectory(temp.File("Kernels"));
        File.WriteAllText(temp.File("Kernels/A.cs"), "using Mhc.Connections;\nnamespace Mhc.Kernels;\nclass A { }\n");
        File.WriteAllText(temp.File("Kernels/B.cs"), "namespace Mhc.Kernels;\nclass B { Mhc.Training.Trainer? t; }\n");
        File.WriteAllText(temp.File("Kernels/C.cs"), "namespace Mhc.Kernels;\n/// <see cref=\"Models.Gpt\"/>\nclass C { }\n");
        File.WriteAllText(temp.File("Kernels/D.cs"), "namespace Mhc.Kernels;\nclass D { int x = config.Training.Steps; }\n");
        var violations = Violations(temp.Path);
        Assert.Equal(3, violations.Count);
        Assert.Contains(violations, v => v.Contains("uses Mhc.Connections", StringComparison.Ordinal));
        Assert.Contains(violations, v => v.Contains("uses Mhc.Training", StringComparison.Ordinal));
        Assert.Contains(violations, v => v.Contains("uses Mhc.Models", StringComparison.Ordinal));
    }
}
