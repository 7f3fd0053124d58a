using System.Text.Json;
using Mhc.Cli;
using SkiaSharp;

namespace Mhc.Tests;

public class SweepCommandTests
{
    static readonly string[] Tiny = ["--d-model", "32", "--heads", "2", "--seq-len", "16", "--batch-size", "4", "--steps", "2", "--kinds", "residual,mhc"];

    [Fact]
    public void A_sweep_writes_a_row_per_value_kind_and_seed_and_resumes_without_redoing_runs()
    {
        using var temp = TestPaths.Temp();
        var outDir = temp.File("sweep");
        Assert.Equal(0, CliApp.Run(["sweep", "--param", "layers=1", "--out", outDir, .. Tiny]));
        var first = Path.Combine(outDir, "layers=1", "mhc", "seed-0", "metrics.jsonl");
        var written = File.GetLastWriteTimeUtc(first);
        // The same sweep with one more value: the finished runs are read back, only the new value trains.
        Assert.Equal(0, CliApp.Run(["sweep", "--param", "layers=1,2", "--out", outDir, .. Tiny]));
        Assert.Equal(written, File.GetLastWriteTimeUtc(first));
        Assert.True(File.Exists(Path.Combine(outDir, "layers=2", "residual", "seed-0", "run.json")));
        using var sweep = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "sweep.json")));
        var rows = sweep.RootElement.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(4, rows.Count);
        Assert.Equal([(1.0, "residual"), (1.0, "mhc"), (2.0, "residual"), (2.0, "mhc")],
            rows.Select(r => (r.GetProperty("value").GetDouble(), r.GetProperty("kind").GetString()!)));
        foreach (var row in rows)
            foreach (var key in new[] { "parameter", "seed", "final_val_loss", "max_composite_forward_gain", "step_time_ratio_to_residual" })
                Assert.True(row.TryGetProperty(key, out _), $"sweep.json row lacks {key}");
        foreach (var png in new[] { "sweep_val_loss.png", "sweep_composite_gain.png", "sweep_step_time.png" })
        {
            using var bitmap = SKBitmap.Decode(Path.Combine(outDir, png));
            Assert.NotNull(bitmap);
        }
        Assert.Contains("mHC.NET sweep over layers", File.ReadAllText(Path.Combine(outDir, "sweep.md")), StringComparison.Ordinal);
    }

    [Fact]
    public void A_sweep_continued_after_its_data_changed_refuses_to_mix_its_finished_runs_with_new_ones()
    {
        using var temp = TestPaths.Temp();
        var data = temp.File("text.txt");
        File.WriteAllText(data, string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 40)));
        var outDir = temp.File("sweep");
        string[] args = ["sweep", "--param", "layers=1", "--out", outDir, "--data", data, "--tokenizer", "byte", .. Tiny];
        Assert.Equal(0, InProcessCli.Run(args).Code);
        File.AppendAllText(data, "and then the data changed.");
        var (code, err) = InProcessCli.Run(args);
        Assert.Equal(ExitCodes.DataError, code);
        Assert.Contains("has changed since the finished run in", err, StringComparison.Ordinal);
        Assert.Contains("restore that data to continue", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("depth=1,2", "is not NAME=v1,v2")]
    [InlineData("layers=1,x", "'x' is not a number")]
    [InlineData("layers=1.5", "is not a whole number")]
    [InlineData("d_model=30", "d_model")]
    public void Bad_parameters_are_refused_before_anything_runs(string param, string expected)
    {
        using var temp = TestPaths.Temp();
        var error = new StringWriter();
        var original = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.Equal(ExitCodes.InvalidArguments, CliApp.Run(["sweep", "--param", param, "--out", temp.File("s"), .. Tiny]));
        }
        finally
        {
            Console.SetError(original);
        }
        Assert.Contains(expected, error.ToString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(temp.File("s")));
    }
}
