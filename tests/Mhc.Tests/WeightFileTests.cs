using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Mhc.Connections;
using Mhc.Interop;
using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>
/// Weight files in and out (docs/interop.md): every kind, GPT and ViT, both layouts, both formats round-trip bit for
/// bit; the hf layout puts each value where Llama's and DeepSeek-V4's names say; loading is strict and all-or-nothing;
/// a file that lies about itself is refused.
/// </summary>
public class WeightFileTests
{
    public static readonly TheoryData<ConnectionKind, bool, WeightLayout, WeightFormat> RoundTrips = Cases();

    static TheoryData<ConnectionKind, bool, WeightLayout, WeightFormat> Cases()
    {
        var data = new TheoryData<ConnectionKind, bool, WeightLayout, WeightFormat>();
        foreach (var kind in Enum.GetValues<ConnectionKind>())
            foreach (var vision in new[] { false, true })
                foreach (var layout in Enum.GetValues<WeightLayout>())
                    foreach (var format in Enum.GetValues<WeightFormat>())
                        data.Add(kind, vision, layout, format);
        return data;
    }

    static ConnectionOptions Options(ConnectionKind kind) =>
        kind == ConnectionKind.Residual ? ConnectionOptions.Residual : new ConnectionOptions { Kind = kind, Streams = 4 };

    static nn.Module<Tensor, Tensor> Model(ConnectionKind kind, bool vision, int seed, bool tied = false)
    {
        manual_seed(seed);
        nn.Module<Tensor, Tensor> model = vision
            ? new Vit(new VitConfig { ImageSize = 8, PatchSize = 4, Classes = 3, DModel = 16, Layers = 2, Heads = 2, Connection = Options(kind) })
            : new Gpt(new GptConfig { VocabSize = 32, DModel = 16, Layers = 2, Heads = 2, SeqLen = 8, TieEmbeddings = tied, Connection = Options(kind) });
        // Every parameter away from its initial value, so a tensor that went to the wrong place shows.
        using (no_grad())
            foreach (var p in model.parameters()) p.add_(randn_like(p) * 0.1);
        model.eval();
        return model;
    }

    static Tensor Input(bool vision)
    {
        manual_seed(99);
        return vision ? randn(2, 3, 8, 8) : randint(0, 32, [2, 8]);
    }

    static float[] Logits(nn.Module<Tensor, Tensor> model, Tensor input)
    {
        using var _ = no_grad();
        using var logits = model.call(input);
        return logits.data<float>().ToArray();
    }

    static string FileName(TempDirectory temp, WeightFormat format) => temp.File(format == WeightFormat.Safetensors ? "w.safetensors" : "w.pt");

    [Theory]
    [MemberData(nameof(RoundTrips))]
    public void Export_then_import_gives_bit_identical_logits(ConnectionKind kind, bool vision, WeightLayout layout, WeightFormat format)
    {
        using var temp = TestPaths.Temp();
        using var source = Model(kind, vision, 1);
        using var target = Model(kind, vision, 2);
        using var input = Input(vision);
        var path = FileName(temp, format);
        ModelWeights.Save(source, path, new WeightFileOptions { Layout = layout });
        Assert.NotEqual(Logits(source, input), Logits(target, input));
        var info = ModelWeights.Load(target, path);
        Assert.Equal((format, layout), (info.Format, info.Layout));
        Assert.Equal(Logits(source, input), Logits(target, input));
    }

    [Fact]
    public void An_untied_head_is_lm_head_and_the_tied_one_is_not_written_twice()
    {
        using var temp = TestPaths.Temp();
        using var untied = Model(ConnectionKind.Manifold, vision: false, 1, tied: false);
        ModelWeights.Save(untied, temp.File("u.safetensors"), new WeightFileOptions());
        Assert.Contains(ModelWeights.Open(temp.File("u.safetensors")).Tensors, t => t.Name == "lm_head.weight");
        using var tied = Model(ConnectionKind.Manifold, vision: false, 1, tied: true);
        ModelWeights.Save(tied, temp.File("t.safetensors"), new WeightFileOptions());
        Assert.DoesNotContain(ModelWeights.Open(temp.File("t.safetensors")).Tensors, t => t.Name == "lm_head.weight");
    }

    [Fact]
    public void The_hf_layout_puts_every_value_where_its_name_says()
    {
        // Checked element by element against the model's own parameters, by plain loops.
        using var temp = TestPaths.Temp();
        using var model = (Gpt)Model(ConnectionKind.Manifold, vision: false, 3);
        var path = temp.File("w.safetensors");
        ModelWeights.Save(model, path, new WeightFileOptions { Layout = WeightLayout.Hf });
        var file = ReadAll(path);
        var ours = model.named_parameters().ToDictionary(p => p.name, p => Reference.Values(p.parameter));
        const int n = 4, d = 16;
        Assert.Equal(ours["token_embedding.weight"], file["model.embed_tokens.weight"]);
        Assert.Equal(ours["final_norm.weight"], file["model.norm.weight"]);
        for (var b = 0; b < 2; b++)
        {
            var qkv = ours[$"blocks.{b}.attn_conn.branch.qkv.weight"];
            Assert.Equal(qkv[..(d * d)], file[$"model.layers.{b}.self_attn.q_proj.weight"]);
            Assert.Equal(qkv[(d * d)..(2 * d * d)], file[$"model.layers.{b}.self_attn.k_proj.weight"]);
            Assert.Equal(qkv[(2 * d * d)..], file[$"model.layers.{b}.self_attn.v_proj.weight"]);
            Assert.Equal(ours[$"blocks.{b}.attn_conn.branch.proj.weight"], file[$"model.layers.{b}.self_attn.o_proj.weight"]);
            Assert.Equal(ours[$"blocks.{b}.attn_conn.branch.norm.weight"], file[$"model.layers.{b}.input_layernorm.weight"]);
            Assert.Equal(ours[$"blocks.{b}.mlp_conn.branch.norm.weight"], file[$"model.layers.{b}.post_attention_layernorm.weight"]);
            foreach (var p in new[] { "gate", "up", "down" })
                Assert.Equal(ours[$"blocks.{b}.mlp_conn.branch.{p}.weight"], file[$"model.layers.{b}.mlp.{p}_proj.weight"]);
            foreach (var (conn, hc) in new[] { ("attn_conn", "attn_hc"), ("mlp_conn", "ffn_hc") })
            {
                var (phi, fn) = (ours[$"blocks.{b}.{conn}.phi"], file[$"model.layers.{b}.{hc}.fn"]);   // φ [n·d, n²+2n], fn [n²+2n, n·d]
                var (width, rows) = (n * n + 2 * n, n * d);
                for (var c = 0; c < rows; c++)
                {
                    for (var r = 0; r < 2 * n; r++) Assert.Equal(phi[c * width + r], fn[r * rows + c]);
                    // comb[src][dst] is H_res[dst][src]: row 2n + s·n + t of fn is φ's column for H_res[t][s].
                    for (var s = 0; s < n; s++)
                        for (var t = 0; t < n; t++)
                            Assert.Equal(phi[c * width + 2 * n + t * n + s], fn[(2 * n + s * n + t) * rows + c]);
                }
                var @base = file[$"model.layers.{b}.{hc}.base"];
                Assert.Equal(ours[$"blocks.{b}.{conn}.bias_pre"], @base[..n]);
                Assert.Equal(ours[$"blocks.{b}.{conn}.bias_post"], @base[n..(2 * n)]);
                var biasRes = ours[$"blocks.{b}.{conn}.bias_res"];
                for (var s = 0; s < n; s++)
                    for (var t = 0; t < n; t++) Assert.Equal(biasRes[t * n + s], @base[2 * n + s * n + t]);
                Assert.Equal(new[] { ours[$"blocks.{b}.{conn}.alpha_pre"][0], ours[$"blocks.{b}.{conn}.alpha_post"][0], ours[$"blocks.{b}.{conn}.alpha_res"][0] },
                    file[$"model.layers.{b}.{hc}.scale"]);
            }
        }
    }

    [Theory]
    [InlineData(WeightPrecision.BF16, ScalarType.BFloat16)]
    [InlineData(WeightPrecision.F16, ScalarType.Float16)]
    public void Lower_precision_rounds_the_body_and_keeps_connections_float32(WeightPrecision precision, ScalarType type)
    {
        using var temp = TestPaths.Temp();
        using var source = Model(ConnectionKind.Manifold, vision: false, 1);
        using var target = Model(ConnectionKind.Manifold, vision: false, 2);
        var path = temp.File("w.safetensors");
        ModelWeights.Save(source, path, new WeightFileOptions { Layout = WeightLayout.MhcNet, Precision = precision });
        using (var stream = File.OpenRead(path))
        {
            var stored = Safetensors.Read(stream).Tensors.ToDictionary(t => t.Name, t => t.Type);
            Assert.Equal(type, stored["token_embedding.weight"]);
            Assert.Equal(ScalarType.Float32, stored["blocks.0.attn_conn.phi"]);
        }
        ModelWeights.Load(target, path);
        var expected = source.named_parameters().ToDictionary(p => p.name, p => p.name.Contains("branch", StringComparison.Ordinal) || !p.name.Contains("_conn.", StringComparison.Ordinal)
            ? Reference.Values(p.parameter.to(type)) : Reference.Values(p.parameter));
        foreach (var (name, value) in target.named_parameters()) Assert.Equal(expected[name], Reference.Values(value));
    }

    static Dictionary<string, double[]> ReadAll(string path)
    {
        using var stream = File.OpenRead(path);
        return Safetensors.Read(stream).Tensors.ToDictionary(t => t.Name, t => Reference.Values(t.Read()));
    }

    // ---- Strict loading: a bad file changes nothing and names the tensor.

    static (string Path, Gpt Target, double[] Before) Prepared(TempDirectory temp, Func<List<(string Name, Tensor Tensor)>, List<(string Name, Tensor Tensor)>> edit)
    {
        using var source = (Gpt)Model(ConnectionKind.Manifold, vision: false, 1);
        var good = temp.File("good.safetensors");
        ModelWeights.Save(source, good, new WeightFileOptions());
        List<(string Name, Tensor Tensor)> tensors;
        IReadOnlyDictionary<string, string> metadata;
        using (var stream = File.OpenRead(good))
        {
            var (stored, meta) = Safetensors.Read(stream);
            tensors = stored.Select(t => (t.Name, t.Read())).ToList();
            metadata = meta;
        }
        var bad = temp.File("bad.safetensors");
        using (var stream = File.Create(bad)) Safetensors.Write(stream, edit(tensors), metadata);
        var target = (Gpt)Model(ConnectionKind.Manifold, vision: false, 2);
        return (bad, target, Everything(target));
    }

    static double[] Everything(nn.Module model) => model.parameters().SelectMany(Reference.Values).ToArray();

    [Fact]
    public void A_missing_tensor_is_named_and_nothing_is_loaded()
    {
        using var temp = TestPaths.Temp();
        var (path, target, before) = Prepared(temp, t => t.Where(e => e.Name != "model.layers.1.ffn_hc.fn").ToList());
        using (target)
        {
            var e = Assert.Throws<WeightFileException>(() => ModelWeights.Load(target, path));
            Assert.Contains("has no tensor 'model.layers.1.ffn_hc.fn'; the model needs it with shape [24, 64]", e.Message, StringComparison.Ordinal);
            Assert.Equal(before, Everything(target));
        }
    }

    [Fact]
    public void An_unexpected_tensor_is_named_and_nothing_is_loaded()
    {
        using var temp = TestPaths.Temp();
        var (path, target, before) = Prepared(temp, t => [.. t, ("model.layers.2.attn_hc.fn", zeros(24, 64))]);
        using (target)
        {
            var e = Assert.Throws<WeightFileException>(() => ModelWeights.Load(target, path));
            Assert.Contains("has tensor 'model.layers.2.attn_hc.fn' [24, 64], which this model does not have", e.Message, StringComparison.Ordinal);
            Assert.Equal(before, Everything(target));
        }
    }

    [Fact]
    public void A_tensor_of_the_wrong_shape_is_named_with_both_shapes()
    {
        using var temp = TestPaths.Temp();
        var (path, target, before) = Prepared(temp, t => t.Select(e => e.Name == "model.norm.weight" ? (e.Name, zeros(17)) : e).ToList());
        using (target)
        {
            var e = Assert.Throws<WeightFileException>(() => ModelWeights.Load(target, path));
            Assert.Contains("tensor 'model.norm.weight' has shape [17]; the model expects [16]", e.Message, StringComparison.Ordinal);
            Assert.Equal(before, Everything(target));
        }
    }

    [Fact]
    public void A_tensor_of_the_wrong_type_is_named()
    {
        using var temp = TestPaths.Temp();
        var (path, target, before) = Prepared(temp, t => t.Select(e => e.Name == "model.norm.weight" ? (e.Name, zeros([16], ScalarType.Int64)) : e).ToList());
        using (target)
        {
            var e = Assert.Throws<WeightFileException>(() => ModelWeights.Load(target, path));
            Assert.Contains("tensor 'model.norm.weight' is of type Int64", e.Message, StringComparison.Ordinal);
            Assert.Equal(before, Everything(target));
        }
    }

    [Fact]
    public void A_file_of_another_kind_does_not_load()
    {
        using var temp = TestPaths.Temp();
        using var hc = Model(ConnectionKind.HyperDynamic, vision: false, 1);
        ModelWeights.Save(hc, temp.File("hc.safetensors"), new WeightFileOptions());
        using var mhc = Model(ConnectionKind.Manifold, vision: false, 2);
        var e = Assert.Throws<WeightFileException>(() => ModelWeights.Load(mhc, temp.File("hc.safetensors")));
        Assert.Contains("has no tensor 'model.layers.0.attn_hc.fn'", e.Message, StringComparison.Ordinal);
    }

    // ---- Headers that lie.

    static string Safetensor(TempDirectory temp, string header, int dataBytes, ulong? claimedLength = null)
    {
        var path = temp.File("lie.safetensors");
        var json = Encoding.UTF8.GetBytes(header);
        using var stream = File.Create(path);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, claimedLength ?? (ulong)json.Length);
        stream.Write(prefix);
        stream.Write(json);
        stream.Write(new byte[dataBytes]);
        return path;
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 8, "claims bytes 0–16 of the data, which holds 8 bytes")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "overlaps that of 'a'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "does not fit the 8 bytes it claims")]
    [InlineData("""{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}""", 8, "impossible shape")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}}""", 8, "impossible shape")]
    [InlineData("""{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}""", 8, "has dtype 'Q4'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8, "names 'a' twice")]
    [InlineData("""{"__metadata__":{"x":3}}""", 0, "__metadata__.x is not a string")]
    [InlineData("""not json""", 0, "not valid JSON")]
    [InlineData("""[1,2]""", 0, "not a JSON object")]
    public void A_lying_header_is_refused(string header, int dataBytes, string expected)
    {
        using var temp = TestPaths.Temp();
        var path = Safetensor(temp, header, dataBytes);
        var e = Assert.Throws<WeightFileException>(() => ModelWeights.Open(path));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_10_GB_header_length_is_refused_before_reading()
    {
        using var temp = TestPaths.Temp();
        var path = Safetensor(temp, "{}", 0, claimedLength: 10_000_000_000);
        Assert.Contains("claims a header of 10,000,000,000 bytes", Assert.Throws<WeightFileException>(() => ModelWeights.Open(path)).Message, StringComparison.Ordinal);
        var shortHeader = Safetensor(temp, "{}", 0, claimedLength: 5000);
        Assert.Contains("holds only 2 after the length", Assert.Throws<WeightFileException>(() => ModelWeights.Open(shortHeader)).Message, StringComparison.Ordinal);
        File.WriteAllBytes(temp.File("tiny"), [1, 2, 3]);
        Assert.Contains("shorter than the 8-byte header length", Assert.Throws<WeightFileException>(() => ModelWeights.Open(temp.File("tiny"))).Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", Assert.Throws<WeightFileException>(() => ModelWeights.Open(temp.File("none"))).Message, StringComparison.Ordinal);
        Assert.Contains("is a directory", Assert.Throws<WeightFileException>(() => ModelWeights.Open(temp.Path)).Message, StringComparison.Ordinal);
    }

    // ---- PyTorch files: only tensors and plain containers.

    static string Pickle(TempDirectory temp, byte[] pickle, params (string Name, byte[] Data)[] records)
    {
        var path = temp.File($"{Guid.NewGuid():N}.pt");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        using (var entry = zip.CreateEntry("archive/data.pkl").Open()) entry.Write(pickle);
        foreach (var (name, data) in records)
            using (var entry = zip.CreateEntry($"archive/data/{name}").Open()) entry.Write(data);
        return path;
    }

    [Fact]
    public void A_pickle_that_names_any_other_global_is_refused_before_it_is_used()
    {
        using var temp = TestPaths.Temp();
        // cos\nsystem\n ('echo',) R: what a malicious "weights" file runs under a plain pickle.load.
        var malicious = Encoding.Latin1.GetBytes("\u0080\u0002cos\nsystem\nX\u0004\u0000\u0000\u0000echo\u0085R.");
        var e = Assert.Throws<WeightFileException>(() => ModelWeights.Open(Pickle(temp, malicious)));
        Assert.Contains("names the global 'os.system'", e.Message, StringComparison.Ordinal);
        var builtin = Encoding.Latin1.GetBytes("\u0080\u0002c__builtin__\neval\n.");
        Assert.Contains("'__builtin__.eval'", Assert.Throws<WeightFileException>(() => ModelWeights.Open(Pickle(temp, builtin))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tensor_reaching_past_its_storage_is_refused()
    {
        using var temp = TestPaths.Temp();
        // {'w': _rebuild_tensor_v2(('storage', torch.FloatStorage, '0', 'cpu', 4), 0, (8,), (1,), False, OrderedDict())}
        var pickle = Encoding.Latin1.GetBytes(
            "\u0080\u0002}(X\u0001\u0000\u0000\u0000wctorch._utils\n_rebuild_tensor_v2\n((X\u0007\u0000\u0000\u0000storagectorch\nFloatStorage\n" +
            "X\u0001\u0000\u0000\u00000X\u0003\u0000\u0000\u0000cpuK\u0004tQK\u0000K\u0008\u0085K\u0001\u0085\u0089ccollections\nOrderedDict\n)RtRu.");
        var path = Pickle(temp, pickle, ("0", new byte[16]));
        Assert.Contains("of size [8] at offset 0 reads past its storage of 4 elements", Assert.Throws<WeightFileException>(() => ModelWeights.Open(path)).Message, StringComparison.Ordinal);
        var missing = Pickle(temp, pickle);
        Assert.Contains("refers to storage '0', which the archive does not hold", Assert.Throws<WeightFileException>(() => ModelWeights.Open(missing)).Message, StringComparison.Ordinal);
        var truncated = Pickle(temp, pickle[..40]);
        Assert.Contains("the pickle ends", Assert.Throws<WeightFileException>(() => ModelWeights.Open(truncated)).Message, StringComparison.Ordinal);
    }

    // ---- PyTorch itself reads what we write, and we read what it writes.

    [FactWhen(Requirement.PyTorch)]
    public void PyTorch_loads_our_file_with_weights_only_and_we_load_what_it_saves()
    {
        using var temp = TestPaths.Temp();
        using var source = Model(ConnectionKind.Manifold, vision: false, 1);
        using var target = Model(ConnectionKind.Manifold, vision: false, 2);
        using var input = Input(vision: false);
        ModelWeights.Save(source, temp.File("ours.pt"), new WeightFileOptions { Layout = WeightLayout.Hf });
        // A real state_dict: an OrderedDict with _metadata, as module.state_dict() returns it, saved by torch.save.
        const string script = """
            import collections, sys, torch
            sd = torch.load(sys.argv[1], weights_only=True)
            assert all(isinstance(v, torch.Tensor) for v in sd.values())
            state = collections.OrderedDict((k, v.clone()) for k, v in sd.items())
            state._metadata = collections.OrderedDict({"": {"version": 1}})
            torch.save(state, sys.argv[2])
            print(len(state), sum(float(v.double().sum()) for v in state.values()))
            """;
        var run = CliProcess.RunFile(Conditions.Python, ["-c", script, temp.File("ours.pt"), temp.File("torch.pt")]);
        Assert.True(run.Code == 0, run.Err);
        var (count, sum) = (int.Parse(run.Out.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture),
            double.Parse(run.Out.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture));
        var exported = ModelWeights.Open(temp.File("ours.pt"));
        Assert.Equal(exported.Tensors.Count, count);
        Assert.Equal(Everything(source).Sum(), sum, 1e-6 * Math.Max(1, Math.Abs(sum)));
        ModelWeights.Load(target, temp.File("torch.pt"));
        Assert.Equal(Logits(source, input), Logits(target, input));
    }
}
