using System.Text.Json;
using Mhc.Cli;
using SkiaSharp;

namespace Mhc.Tests;

public class CompareCommandTests
{
    static readonly string[] Tiny = ["--layers", "1", "--d-model", "32", "--heads", "2", "--seq-len", "16", "--batch-size", "4", "--diagnostics-every", "2"];

    [Fact]
    public void Tiny_compare_writes_every_report_file_with_every_kind()
    {
        using var temp = TestPaths.Temp();
        var outDir = Path.Combine(temp.Path, "cmp");
        Assert.Equal(0, CliApp.Run(["compare", "--steps", "4", "--kinds", "residual,hc,mhc", "--out", outDir, .. Tiny]));

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")));
        var results = json.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(["residual", "hc", "mhc"], results.Select(r => r.GetProperty("kind").GetString()));
        string[] keys = ["kind", "final_train_loss", "final_val_loss", "max_loss_spike", "max_grad_norm", "max_composite_forward_gain",
            "max_composite_backward_gain", "min_composite_column_sum", "convergence_speedup", "tokens_per_s", "step_time_ratio_to_residual", "peak_memory_mb"];
        foreach (var r in results)
            foreach (var key in keys) Assert.True(r.TryGetProperty(key, out _), $"report.json lacks {key}");
        Assert.Equal(1.0, results[2].GetProperty("max_composite_forward_gain").GetDouble(), 1e-4);   // mHC: doubly stochastic

        var markdown = File.ReadAllText(Path.Combine(outDir, "report.md"));
        var html = File.ReadAllText(Path.Combine(outDir, "report.html"));
        foreach (var kind in new[] { "residual", "hc", "mhc" })
        {
            Assert.Contains($"| {kind} |", markdown, StringComparison.Ordinal);
            Assert.Contains($"<td>{kind}</td>", html, StringComparison.Ordinal);
        }
        Assert.Contains("mhc compare --steps 4", markdown, StringComparison.Ordinal);
        foreach (var png in new[] { "loss.png", "grad_norm.png", "composite_gain.png", "single_gain.png", "gain_history.png", "stream_diversity.png", "res_mixing.png", "mixing.png" })
        {
            using var bitmap = SKBitmap.Decode(Path.Combine(outDir, png));
            Assert.NotNull(bitmap);
            Assert.True(bitmap.Width >= 700 && bitmap.Height >= 300, $"{png}: {bitmap.Width}×{bitmap.Height}");
            var colors = new HashSet<SKColor>();
            for (var x = 0; x < bitmap.Width; x += 7)
                for (var y = 0; y < bitmap.Height; y += 7) colors.Add(bitmap.GetPixel(x, y));
            Assert.True(colors.Count > 20, $"{png} looks empty ({colors.Count} colours)");
            Assert.Contains($"data:image/png;base64,", html, StringComparison.Ordinal);
        }
        // Each run logged diagnostics and saved its final profile.
        var metrics = File.ReadAllLines(Path.Combine(outDir, "mhc", "metrics.jsonl"));
        Assert.Contains(metrics, l => l.Contains("\"max_composite_forward_gain\"", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(outDir, "hc", "diagnostics.json")));
    }

    [Fact]
    public void Inspect_prints_every_sub_layer_as_json()
    {
        using var temp = TestPaths.Temp();
        var run = Path.Combine(temp.Path, "run");
        Assert.Equal(0, CliApp.Run(["train", "--steps", "2", "--connection", "hc", "--out", run, .. Tiny]));
        var output = new StringWriter();
        var original = Console.Out;
        Console.SetOut(output);
        try
        {
            Assert.Equal(0, CliApp.Run(["inspect", "--checkpoint", run, "--json"]));
        }
        finally
        {
            Console.SetOut(original);
        }
        using var json = JsonDocument.Parse(output.ToString());
        Assert.Equal("hc", json.RootElement.GetProperty("kind").GetString());
        Assert.Equal(2, json.RootElement.GetProperty("sublayers").GetArrayLength());
    }
}
