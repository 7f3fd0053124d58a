using System.CommandLine;
using System.Globalization;
using Mhc.Connections;
using Mhc.Diagnostics;
using Mhc.Models;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Cli;

/// <summary>
/// <c>mhc demo</c>: builds a small mHC transformer, runs one batch through it and prints the mixing
/// coefficients each sub-layer applies, with their gains.
/// </summary>
static class DemoCommand
{
    public static Command Create()
    {
        var streams = new Option<int>("--streams") { Description = "Number of streams n.", DefaultValueFactory = _ => 4 };
        var blocks = new Option<int>("--blocks") { Description = "Transformer blocks (two sub-layers each).", DefaultValueFactory = _ => 2 };
        var dModel = new Option<int>("--d-model") { Description = "Model width d.", DefaultValueFactory = _ => 32 };
        var seed = new Option<int>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 0 };
        var noise = new Option<double>("--noise")
        {
            Description = "Std of Gaussian noise added to the connection parameters, standing in for training; 0 shows the initialisation.",
            DefaultValueFactory = _ => 0.5,
        }.Plain();
        var command = new Command("demo", "Build a small mHC network, run a batch and print every sub-layer's H_pre, H_post and H_res.")
        {
            streams, blocks, dModel, seed, noise,
        };
        command.SetAction(parse => CliErrors.Run(parse.GetValue(GlobalOptions.Verbose), () => Run(parse.GetValue(streams), parse.GetValue(blocks), parse.GetValue(dModel),
            parse.GetValue(seed), parse.GetValue(noise))));
        return command;
    }

    static int Run(int n, int blockCount, int d, int seed, double noise)
    {
        if (blockCount is < 1 or > 4_096) throw new ArgumentException($"--blocks = {blockCount} is out of range: allowed 1..4096.");
        if (n is < 2 or > ConnectionOptions.MaxStreams) throw new ArgumentException($"--streams = {n} is out of range: allowed 2..{ConnectionOptions.MaxStreams}.");
        // Four heads of an even width.
        if (d is < 8 or > 65_536 || d % 8 != 0) throw new ArgumentException($"--d-model = {d} is out of range: allowed a multiple of 8 in 8..65536.");
        if (noise < 0 || !float.IsFinite((float)noise)) throw new ArgumentException($"--noise = {noise} is out of range: allowed a finite number >= 0.");
        manual_seed(seed);
        var options = new ConnectionOptions { Kind = ConnectionKind.Manifold, Streams = n };
        var blocks = Enumerable.Range(0, blockCount)
            .Select(b => new TransformerBlock(b, blockCount, d, heads: 4, mlpHidden: 0, causal: true, maxPositions: 16, dropout: 0, options))
            .ToList();
        using var _ = no_grad();
        if (noise > 0)
            foreach (var block in blocks)
                foreach (var connection in new[] { block.Attention, block.Mlp })
                    foreach (var (name, p) in connection.named_parameters())
                        if (!name.StartsWith("branch.", StringComparison.Ordinal)) p.add_(randn_like(p) * noise);

        using var scope = NewDisposeScope();
        var x = Streams.Expand(randn(2, 16, d), n);
        AnsiConsole.MarkupLine($"[bold]mHC, n = {n}, d = {d}, {2 * blockCount} sub-layers[/]: coefficients as applied, token means over a [[2, 16]] batch.");
        var applied = new List<Tensor>();
        foreach (var (connection, branch) in blocks.SelectMany(b => new[] { (b.Attention, "attention"), (b.Mlp, "mlp") }))
        {
            using var m = connection.Coefficients(x);
            var pre = m.Pre.mean([0, 1]).data<float>().ToArray();
            var post = m.Post.mean([0, 1]).data<float>().ToArray();
            var res = m.Res.mean([0, 1]);
            applied.Add(m.Res.alias());
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"\n[bold]sub-layer {connection.SublayerIndex}[/] ({branch})   gain forward {Gain.Forward(m.Res).mean().ToDouble():F4}, backward {Gain.Backward(m.Res).mean().ToDouble():F4}"));
            Console.WriteLine("  i   H_pre  H_post   H_res row i");
            for (var i = 0; i < n; i++)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {i,-3} {pre[i],6:F3}  {post[i],6:F3}   {string.Join(" ", res[i].data<float>().ToArray().Select(v => v.ToString("F3", CultureInfo.InvariantCulture)))}"));
            x = connection.call(x);
        }
        var composite = Gain.Composite(applied);
        AnsiConsole.MarkupLine($"\nComposite gain from sub-layer 0 to the output: forward {Gain.Forward(composite[0]).mean().ToDouble():F4}, backward {Gain.Backward(composite[0]).mean().ToDouble():F4} (1 = no amplification).");
        return 0;
    }
}
