using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Xml.Linq;
using Xunit.Abstractions;

namespace Mhc.Tests;

/// <summary>
/// The MhcNet package as a consumer sees it: <c>dotnet pack src/Mhc</c> into a folder feed, then a fresh console
/// project outside the repository references MhcNet from that feed plus TorchSharp-cpu, wraps a module of its own in
/// an mHC connection and takes one AdamW step; the package readme's usage example runs first, as written. On a machine whose libstdc++ lacks GLIBCXX_3.4.32 (Debian 12) the
/// program only starts if the package's build targets patched TorchSharp's wrapper in the consumer's output.
/// Slow: packs, restores and copies LibTorch (about 600 MB) into the consumer's output.
/// </summary>
[Trait("Category", "Slow")]
public class PackageTests(ITestOutputHelper output)
{
    const string TorchSharpVersion = "0.107.0";

    [Fact]
    public void Packed_library_trains_a_consumer_module_with_an_mhc_connection()
    {
        using var temp = TestPaths.Temp();
        var feed = Path.Combine(temp.Path, "feed");
        // A version no cache holds, so restore takes this build's package and never a stale one of the same version.
        var version = "0.0.0-packagetest." + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", CultureInfo.InvariantCulture);
        var clock = Stopwatch.StartNew();

        var pack = Dotnet(TestPaths.RepositoryRoot, null,
            "pack", Path.Combine(TestPaths.RepositoryRoot, "src", "Mhc"), "-c", "Release", "-o", feed, $"-p:PackageVersion={version}");
        Assert.True(pack.Code == 0, $"dotnet pack failed ({pack.Code}):\n{pack.Out}\n{pack.Err}");
        output.WriteLine($"pack: {clock.Elapsed.TotalSeconds:F1} s");
        CheckPackage(feed, version);

        // The consumer: outside the repository (no Directory.Build.* or central package versions apply), its own
        // packages folder (nothing left in the user's cache) that falls back to the user's (TorchSharp is not fetched again).
        var app = Path.Combine(temp.Path, "app");
        Directory.CreateDirectory(app);
        var userPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        File.WriteAllText(Path.Combine(app, "nuget.config"), NuGetConfig(feed, userPackages));
        File.WriteAllText(Path.Combine(app, "Consumer.csproj"), ConsumerProject(version));
        File.WriteAllText(Path.Combine(app, "Program.cs"), ConsumerProgram());

        clock.Restart();
        var run = Dotnet(app, Path.Combine(temp.Path, "packages"), "run", "-c", "Release");
        output.WriteLine($"restore + build + run: {clock.Elapsed.TotalSeconds:F1} s");
        output.WriteLine(run.Out);
        Assert.True(run.Code == 0, $"dotnet run failed ({run.Code}):\n{run.Out}\n{run.Err}");

        // The package's targets reached the consumer's build (buildTransitive, imported by the restore-generated targets).
        var imports = File.ReadAllText(Path.Combine(app, "obj", "Consumer.csproj.nuget.g.targets"));
        Assert.Contains("MhcNet.targets", imports, StringComparison.Ordinal);

        // The package readme's example ran as written.
        Assert.Contains("readme_example_output=8x128x64", run.Out, StringComparison.Ordinal);
        var result = run.Out.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("loss_before=", StringComparison.Ordinal));
        var values = result.Split(' ').Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => double.Parse(kv[1], CultureInfo.InvariantCulture));
        Assert.True(double.IsFinite(values["loss_before"]) && values["loss_before"] > 0, result);
        Assert.True(double.IsFinite(values["loss_after"]), result);
        Assert.NotEqual(values["loss_before"], values["loss_after"]);
        // Gradients reached the connection's own parameters (φ, gates, biases), not only the consumer's branch.
        Assert.True(values["connection_parameters"] > 0, result);
        Assert.True(values["connection_grad_norm"] > 0 && double.IsFinite(values["connection_grad_norm"]), result);
    }

    /// <summary>What <c>dotnet pack</c> produced: library, XML docs, both targets (the repository's file, byte for byte), symbols, metadata.</summary>
    static void CheckPackage(string feed, string version)
    {
        var package = Path.Combine(feed, $"MhcNet.{version}.nupkg");
        Assert.True(File.Exists(package), $"{package} is missing");
        Assert.True(File.Exists(Path.Combine(feed, $"MhcNet.{version}.snupkg")), "the symbol package is missing");
        using var zip = ZipFile.OpenRead(package);
        var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
        foreach (var name in new[] { "lib/net10.0/MhcNet.dll", "lib/net10.0/MhcNet.xml", "PACKAGE.md", "build/MhcNet.targets", "buildTransitive/MhcNet.targets" })
            Assert.Contains(name, entries);
        var compat = File.ReadAllBytes(Path.Combine(TestPaths.RepositoryRoot, "build", "TorchSharpLibstdcxxCompat.targets"));
        foreach (var name in new[] { "build/MhcNet.targets", "buildTransitive/MhcNet.targets" })
        {
            using var stream = zip.GetEntry(name)!.Open();
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            Assert.Equal(compat, copy.ToArray());
        }

        using var nuspecStream = zip.GetEntry("MhcNet.nuspec")!.Open();
        var metadata = XDocument.Load(nuspecStream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
        string? Value(string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value;
        Assert.Equal("MIT", Value("license"));
        Assert.Equal("PACKAGE.md", Value("readme"));
        Assert.False(string.IsNullOrWhiteSpace(Value("description")));
        Assert.Contains(metadata.Elements(), e => e.Name.LocalName == "repository");
        var dependencies = metadata.Descendants().Where(e => e.Name.LocalName == "dependency")
            .ToDictionary(e => (string)e.Attribute("id")!, e => (string)e.Attribute("version")!);
        Assert.Equal(TorchSharpVersion, dependencies["TorchSharp"]);
        Assert.DoesNotContain(dependencies.Keys, id => id.StartsWith("TorchSharp-", StringComparison.OrdinalIgnoreCase) || id.StartsWith("libtorch", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// Runs the SDK that runs the tests. <paramref name="packages"/>, if given, becomes the global packages folder.
    /// MSBuild nodes are not kept alive after the command.
    /// </summary>
    static (int Code, string Out, string Err) Dotnet(string directory, string? packages, params string[] args)
    {
        var environment = new Dictionary<string, string?>
        {
            ["MSBUILDDISABLENODEREUSE"] = "1",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
            // Set by the test run's own dotnet for its MSBuild; the child SDK sets its own.
            ["MSBuildExtensionsPath"] = null,
            ["MSBuildSDKsPath"] = null,
            ["MSBUILD_EXE_PATH"] = null,
        };
        if (packages is not null) environment["NUGET_PACKAGES"] = packages;
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        return CliProcess.RunFile(dotnet, args, directory, TimeSpan.FromMinutes(15), environment);
    }

    /// <summary>
    /// The folder feed, plus nuget.org by name; no &lt;clear/&gt;, so the machine's own sources (user and machine
    /// NuGet.Config) still apply. The user's packages folder is a fallback: packages there are used in place.
    /// </summary>
    static string NuGetConfig(string feed, string userPackages) => $"""
        <?xml version="1.0" encoding="utf-8"?>
        <configuration>
          <packageSources>
            <add key="mhcnet-test-feed" value="{feed}" />
            <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
          </packageSources>
          <fallbackPackageFolders>
            <add key="user-packages" value="{userPackages}" />
          </fallbackPackageFolders>
        </configuration>
        """;

    static string ConsumerProject(string version) => $"""
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup>
            <OutputType>Exe</OutputType>
            <TargetFramework>net10.0</TargetFramework>
            <ImplicitUsings>enable</ImplicitUsings>
            <Nullable>enable</Nullable>
          </PropertyGroup>
          <ItemGroup>
            <PackageReference Include="MhcNet" Version="{version}" />
            <PackageReference Include="TorchSharp-cpu" Version="{TorchSharpVersion}" />
          </ItemGroup>
        </Project>
        """;

    /// <summary>
    /// The package readme's usage example as written (src/Mhc/PACKAGE.md, its usings included), then the consumer's own
    /// 2-layer MLP branch in an mHC connection over n = 4 streams and one AdamW step.
    /// </summary>
    static string ConsumerProgram()
    {
        var readme = File.ReadAllLines(Path.Combine(TestPaths.RepositoryRoot, "src", "Mhc", "PACKAGE.md"));
        var open = Array.FindIndex(readme, l => l.StartsWith("```csharp", StringComparison.Ordinal));
        var close = Array.FindIndex(readme, open + 1, l => l.StartsWith("```", StringComparison.Ordinal));
        Assert.True(open >= 0 && close > open, "PACKAGE.md has no csharp block");
        return "using System.Globalization;\nusing TorchSharp.Modules;\n" + string.Join('\n', readme[(open + 1)..close]) + "\n" + ConsumerCode;
    }

    /// <summary>Follows the readme example, which declares d, x, y, blocks and optimizer and the usings of Mhc.Connections and TorchSharp.</summary>
    const string ConsumerCode = """
        Console.WriteLine("readme_example_output=" + string.Join('x', y.shape));

        torch.manual_seed(7);
        const int width = 32, n = 4;
        var connection = Connection.Create(new ConnectionOptions { Kind = ConnectionKind.Manifold, Streams = n }, width, 0, new Mlp(width));
        var h = randn(2, 16, width);                      // [B, T, d]
        var target = randn(2, 16, width);
        var state = Streams.Expand(h, n);                 // [B, T, n, d]
        if (!state.shape.SequenceEqual(new long[] { 2, 16, n, width })) throw new InvalidOperationException("Expand gave " + string.Join('x', state.shape));
        var adamw = optim.AdamW(connection.parameters(), lr: 1e-2);

        var loss = nn.functional.mse_loss(Streams.Collapse(connection.call(state)), target);
        loss.backward();
        var own = connection.named_parameters().Where(p => !p.name.StartsWith("branch.", StringComparison.Ordinal)).ToList();
        var gradNorm = Math.Sqrt(own.Sum(p => p.parameter.grad is { } g ? g.pow(2).sum().ToDouble() : 0.0));
        adamw.step();
        double after;
        using (no_grad()) after = nn.functional.mse_loss(Streams.Collapse(connection.call(state)), target).ToDouble();

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"loss_before={loss.ToDouble():R} loss_after={after:R} connection_grad_norm={gradNorm:R} connection_parameters={own.Count}"));

        sealed class Mlp : nn.Module<Tensor, Tensor>
        {
            readonly LayerNorm norm;
            readonly Linear up, down;

            public Mlp(int d) : base(nameof(Mlp))
            {
                norm = nn.LayerNorm(d);
                up = nn.Linear(d, 4 * d);
                down = nn.Linear(4 * d, d);
                RegisterComponents();
            }

            public override Tensor forward(Tensor x) => down.call(nn.functional.gelu(up.call(norm.call(x))));
        }
        """;
}
