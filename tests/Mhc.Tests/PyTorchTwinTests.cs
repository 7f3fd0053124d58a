using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Mhc.Cli;
using Mhc.Connections;
using Mhc.Interop;
using Mhc.Models;
using Mhc.Training;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>
/// The PyTorch twin (interop/python, docs/scale-out.md) against the C# model: the same logits from the same weight file,
/// DistributedDataParallel over two processes giving the losses of one, and the round trip C# → torchrun → C#.
/// Runs Debian's Python (<c>/usr/bin/python3</c>, PyTorch 1.13); skipped with the reason where it has no torch.
/// </summary>
public class PyTorchTwinTests(ITestOutputHelper output)
{
    static readonly string Twin = Path.Combine(TestPaths.RepositoryRoot, "interop", "python");

    static GptConfig Config(ConnectionOptions connection, bool tied = true) => new()
    {
        VocabSize = 256, DModel = 32, Layers = 2, Heads = 2, SeqLen = 16, TieEmbeddings = tied, Connection = connection,
    };

    // A model with every parameter moved off its initial value (φ, HC's dynamic weights start at 0), saved as mhc export does.
    static Gpt SavedModel(GptConfig config, string path, int seed)
    {
        manual_seed(seed);
        var model = new Gpt(config);
        using (no_grad())
            foreach (var p in model.parameters()) p.add_(randn_like(p) * 0.1);
        model.eval();
        var run = new RunConfig { Model = config, Data = new DataOptions { Path = "text.txt", Tokenizer = "byte" } };
        ModelWeights.Save(model, path, new WeightFileOptions { Layout = WeightLayout.Hf },
            new Dictionary<string, string> { [ModelWeights.ConfigKey] = run.ToJson() });
        return model;
    }

    static (int Code, string Out, string Err) Python(params string[] args) =>
        CliProcess.RunFile(Conditions.Python, args, environment: new Dictionary<string, string?> { ["PYTHONDONTWRITEBYTECODE"] = "1" });

    static string Ok((int Code, string Out, string Err) result)
    {
        Assert.True(result.Code == 0, $"exit {result.Code}\n{result.Out}\n{result.Err}");
        return result.Out;
    }

    // torchrun on this machine's loopback. Debian's torch 1.13 on Python 3.11 fails on the default --redirects 0 (its
    // IntFlag lookup no longer finds NONE), so stdout is tee'd explicitly; that prefixes each line with the rank.
    static string TorchRun(int processes, params string[] args)
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        return Ok(Python(["-m", "torch.distributed.run", "--redirects", "1", "--tee", "1", "--monitor_interval", "0.1",
            "--nnodes", "1", "--nproc_per_node", processes.ToString(CultureInfo.InvariantCulture),
            "--master_addr", "127.0.0.1", "--master_port", port.ToString(CultureInfo.InvariantCulture),
            Path.Combine(Twin, "train_ddp.py"), .. args]));
    }

    static double[] StepLosses(string output) =>
        Regex.Matches(output, @"step \d+/\d+\s+loss ([0-9.]+)").Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToArray();

    static double ValidationLoss(string output) =>
        double.Parse(Regex.Match(output, @"validation loss ([0-9.]+) nats/token").Groups[1].Value, CultureInfo.InvariantCulture);

    static string Text(TempDirectory temp, string name, int bytes)
    {
        var path = temp.File(name);
        File.WriteAllBytes(path, File.ReadAllBytes(TestPaths.Data("tinyshakespeare.txt"))[..bytes]);
        return path;
    }

    // Every kind the twin covers; the residual model keeps a head of its own, so lm_head is covered too.
    static readonly (string Name, ConnectionOptions Connection, bool Tied)[] Kinds =
    [
        ("residual", ConnectionOptions.Residual, false),
        ("hc-static", new ConnectionOptions { Kind = ConnectionKind.HyperStatic, Streams = 4 }, true),
        ("hc", new ConnectionOptions { Kind = ConnectionKind.HyperDynamic, Streams = 4 }, true),
        ("mhc", new ConnectionOptions { Kind = ConnectionKind.Manifold, Streams = 4 }, true),
        ("mhc deepseek-v4", new ConnectionOptions { Kind = ConnectionKind.Manifold, Streams = 4, Definition = ManifoldDefinition.DeepSeekV4 }, true),
        ("mhc-static", new ConnectionOptions { Kind = ConnectionKind.ManifoldStatic, Streams = 4 }, true),
        ("mhc-lite", new ConnectionOptions { Kind = ConnectionKind.ManifoldLite, Streams = 3 }, true),
        ("mhc-res-only", new ConnectionOptions { Kind = ConnectionKind.ManifoldResOnly, Streams = 4 }, true),
        ("mhc-res-pre", new ConnectionOptions { Kind = ConnectionKind.ManifoldResPre, Streams = 4 }, true),
    ];

    // In float32 the two agree to rounding (the issue's bound: 1e-5); in float64 to 1e-10, which only the same arithmetic gives.
    [FactWhen(Requirement.PyTorch)]
    public void The_twin_gives_the_logits_of_Gpt_from_the_same_file()
    {
        using var temp = TestPaths.Temp();
        manual_seed(3);
        using var ids = randint(0, 256, [3, 16]);
        var expected = Kinds.Select((k, i) =>
        {
            using var model = SavedModel(Config(k.Connection, k.Tied), temp.File($"{i}.safetensors"), seed: 7 + i);
            var single = Logits(model, ids);
            model.to(ScalarType.Float64);
            return (Float32: single, Float64: Logits(model, ids));
        }).ToList();
        // One Python for all kinds: importing torch is most of its time.
        const string script = """
            import json, sys, torch
            sys.path.insert(0, sys.argv[1])
            import mhc_twin
            ids = torch.tensor(json.loads(sys.argv[2]))
            for weights, out in zip(sys.argv[3::2], sys.argv[4::2]):
                logits = {}
                for dtype in (torch.float32, torch.float64):
                    model, _, _ = mhc_twin.load(weights, dtype)
                    with torch.no_grad():
                        logits[str(dtype)] = model.eval()(ids)
                mhc_twin.write_safetensors(out, logits, {})
            """;
        var rows = "[" + string.Join(",", Enumerable.Range(0, 3).Select(b => "[" + string.Join(",", ids[b].data<long>().ToArray()) + "]")) + "]";
        Ok(Python(["-c", script, Twin, rows, .. Kinds.SelectMany((_, i) => new[] { temp.File($"{i}.safetensors"), temp.File($"{i}.logits.safetensors") })]));
        for (var i = 0; i < Kinds.Length; i++)
        {
            using var stream = File.OpenRead(temp.File($"{i}.logits.safetensors"));
            var twin = Safetensors.Read(stream).Tensors.ToDictionary(t => t.Name, t => t.Read());
            var (single, @double) = ((twin["torch.float32"] - expected[i].Float32).abs().max().ToDouble(),
                (twin["torch.float64"] - expected[i].Float64).abs().max().ToDouble());
            output.WriteLine($"{Kinds[i].Name}: max |Δlogit| = {single:E2} in float32, {@double:E2} in float64 (logits' standard deviation {expected[i].Float32.std().ToDouble():F3})");
            Assert.Equal(expected[i].Float32.shape, twin["torch.float32"].shape);
            Assert.True(single < 1e-5, $"{Kinds[i].Name}: max |Δlogit| = {single:E2} in float32");
            Assert.True(@double < 1e-10, $"{Kinds[i].Name}: max |Δlogit| = {@double:E2} in float64");
        }
    }

    static Tensor Logits(Gpt model, Tensor ids)
    {
        using var _ = no_grad();
        return model.call(ids);
    }

    [FactWhen(Requirement.PyTorch)]
    public void Ddp_over_two_processes_gives_the_losses_of_one()
    {
        using var temp = TestPaths.Temp();
        var weights = temp.File("model.safetensors");
        SavedModel(Config(new ConnectionOptions { Kind = ConnectionKind.Manifold, Streams = 4 }), weights, seed: 11).Dispose();
        var text = Text(temp, "text.txt", 8_000);
        string[] Args(string name) =>
            ["--weights", weights, "--data", text, "--steps", "3", "--batch-size", "4", "--lr", "1e-2", "--warmup-steps", "0",
             "--dtype", "float64", "--out", temp.File(name)];
        var one = TorchRun(1, Args("one.safetensors"));
        var two = TorchRun(2, Args("two.safetensors"));
        output.WriteLine(one);
        output.WriteLine(two);
        var (lossesOne, lossesTwo) = (StepLosses(one), StepLosses(two));
        Assert.Equal(3, lossesOne.Length);
        Assert.Equal(3, lossesTwo.Length);
        Assert.Contains("2 process(es) × 2 windows", two, StringComparison.Ordinal);
        for (var i = 0; i < 3; i++) Assert.True(Math.Abs(lossesOne[i] - lossesTwo[i]) < 1e-5, $"step {i + 1}: {lossesOne[i]} vs {lossesTwo[i]}");
        Assert.True(lossesOne[2] < lossesOne[0] - 0.01, $"the steps trained nothing: {string.Join(", ", lossesOne)}");
    }

    [FactWhen(Requirement.PyTorch)]
    public void Weights_go_from_mhc_through_torchrun_and_back_to_mhc()
    {
        using var temp = TestPaths.Temp();
        var text = Text(temp, "text.txt", 8_000);
        var evaluation = Text(temp, "eval.txt", 1_500);
        var run = temp.File("run");
        string[] tiny = ["--layers", "1", "--d-model", "32", "--heads", "2", "--seq-len", "16", "--batch-size", "4"];
        Ok(Cli(["train", "--steps", "5", "--connection", "mhc", "--data", text, "--tokenizer", "byte", "--out", run, .. tiny]));
        var exported = temp.File("exported.safetensors");
        Ok(Cli(["export", "--checkpoint", run, "--out", exported]));
        var trained = temp.File("trained.safetensors");
        var ddp = TorchRun(2, "--weights", exported, "--data", text, "--steps", "3", "--lr", "1e-2", "--warmup-steps", "0",
            "--out", trained, "--eval-data", evaluation);
        output.WriteLine(ddp);
        var twinLoss = ValidationLoss(ddp);
        var ours = Ok(Cli(["eval", "--weights", trained, "--data", evaluation]));
        Assert.Equal(twinLoss, ValidationLoss(ours), 1e-5);
        // The weights moved: the twin's eval of the exported file (as `mhc eval` prints it) scores the same text differently.
        var before = Ok(Python(Path.Combine(Twin, "mhc_twin.py"), "eval", "--weights", exported, "--data", evaluation));
        Assert.Contains("1,499 tokens predicted in 94 consecutive windows of up to 16", before, StringComparison.Ordinal);
        Assert.NotEqual(twinLoss, ValidationLoss(before), 1e-3);
        Assert.Contains("mhc (n = 4)", Ok(Cli(["inspect", "--weights", trained])), StringComparison.Ordinal);
        Ok(Cli(["train", "--steps", "1", "--init-from", trained, "--data", text, "--tokenizer", "byte", "--out", temp.File("next"), .. tiny]));
    }

    static (int Code, string Out, string Err) Cli(string[] args) => WeightsCommandTests.Run(args);
}
