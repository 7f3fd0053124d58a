using System.Globalization;
using Mhc.Diagnostics;
using SkiaSharp;

namespace Mhc.Cli.Reports;

/// <summary>
/// <c>mixing.png</c>, after the mHC paper's Fig. 8: for each multi-stream kind, the token-mean H_res of every sub-layer
/// (top row) and the composite H_res(L−1)·…·H_res(k) from each sub-layer to the output (bottom row) as small heat maps,
/// all on one colour scale: white is 0, red positive, blue negative, the scale's ends the largest |entry| of the chart.
/// Drawn with SkiaSharp directly: a grid of many small matrices with a shared scale is not a plot type ScottPlot has.
/// </summary>
static class MixingChart
{
    const int Cell = 16;
    const int Gap = 10;
    const int Label = 170;
    const int Top = 40;

    /// <summary>Writes the chart for the runs whose profile has more than one stream; false when there is none.</summary>
    public static bool Write(IReadOnlyList<ComparedRun> runs, string path)
    {
        // One seed's matrices (the first): averaging matrices over seeds would blur what each run learned.
        var panels = runs.Where(r => r.Profile is { } p && p.Sublayers.Count > 0 && p.Sublayers[0].ResMean.Length > 1)
            .GroupBy(r => r.Kind).Select(g => g.First())
            .Select(r => (Kind: runs.Select(x => x.Seed).Distinct().Count() > 1 ? $"{r.Kind} s{r.Seed}" : r.Kind, Sublayers: r.Profile!.Sublayers)).ToList();
        if (panels.Count == 0) return false;
        var n = panels.Max(p => p.Sublayers[0].ResMean.Length);
        var count = panels.Max(p => p.Sublayers.Count);
        var scale = panels.SelectMany(p => p.Sublayers).SelectMany(s => s.ResMean.Concat(s.CompositeMean)).SelectMany(row => row)
            .Select(Math.Abs).DefaultIfEmpty(1).Max();
        var matrix = n * Cell;
        var width = Math.Max(760, Label + count * (matrix + Gap) + 90);
        var height = Top + panels.Count * 2 * (matrix + Gap + 16) + 20;
        using var surface = SKSurface.Create(new SKImageInfo(width, height));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var font = new SKFont(SKTypeface.Default, 12);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var fill = new SKPaint();
        canvas.DrawText("Token-mean H_res of each sub-layer k (row i = output stream i) and the composite from k to the output", 8, 20, font, ink);
        var y = Top;
        foreach (var (kind, sublayers) in panels)
        {
            foreach (var (title, pick) in new (string, Func<SublayerDiagnostics, double[][]>)[] { ($"{kind}: H_res(k)", s => s.ResMean), ($"{kind}: composite k→out", s => s.CompositeMean) })
            {
                canvas.DrawText(title, 8, y + matrix / 2 + 4, font, ink);
                for (var k = 0; k < sublayers.Count; k++)
                {
                    var x = Label + k * (matrix + Gap);
                    var m = pick(sublayers[k]);
                    for (var i = 0; i < m.Length; i++)
                        for (var j = 0; j < m[i].Length; j++)
                        {
                            fill.Color = Colour(m[i][j] / scale);
                            canvas.DrawRect(x + j * Cell, y + i * Cell, Cell, Cell, fill);
                        }
                    canvas.DrawText(k.ToString(CultureInfo.InvariantCulture), x, y + matrix + 13, font, ink);
                }
                y += matrix + Gap + 16;
            }
        }
        // The colour bar: −scale … +scale.
        var barX = width - 60;
        for (var i = 0; i <= 100; i++)
        {
            fill.Color = Colour(1 - i / 50.0);
            canvas.DrawRect(barX, Top + i * 3, 16, 3, fill);
        }
        canvas.DrawText($"+{Number(scale)}", barX - 4, Top - 4, font, ink);
        canvas.DrawText("0", barX + 20, Top + 154, font, ink);
        canvas.DrawText($"−{Number(scale)}", barX - 4, Top + 318, font, ink);
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        using var file = File.Create(path);
        data.SaveTo(file);
        return true;
    }

    // White at 0, red towards +1, blue towards −1.
    static SKColor Colour(double v)
    {
        var t = Math.Clamp(Math.Abs(v), 0, 1);
        var fade = (byte)Math.Round(255 * (1 - t));
        return v >= 0 ? new SKColor(255, fade, fade) : new SKColor(fade, fade, 255);
    }

    static string Number(double v) => v.ToString(v >= 10 ? "F0" : "0.###", CultureInfo.InvariantCulture);
}
