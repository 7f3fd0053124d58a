using Mhc.Connections;
using Mhc.Diagnostics;
using Mhc.Interop;
using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>
/// RMT (<c>rmt</c>) and MUDDFormer (<c>muddformer</c>) against plain loops over double arrays: RMT's key reads and
/// outer-product writes and its stream ends, MUDDFormer's dense weighted sums and final aggregation; gradients by central
/// finite differences; the signal-path diagnostics on maps whose value is known; bad sizes refused by name.
/// </summary>
public class AlternativeConnectionTests
{
    /// <summary>A three-input branch with a known, non-linear, non-symmetric formula: tanh(q) + 2·k − v·v.</summary>
    sealed class ThreeInputBranch : nn.Module<Tensor, Tensor>, IMultiInputBranch
    {
        public ThreeInputBranch() : base("three_input_branch") => RegisterComponents();

        public override Tensor forward(Tensor u) => Call(u, u, u);

        public Tensor Call(Tensor query, Tensor key, Tensor value) => query.tanh() + 2 * key - value * value;

        public static double Value(double q, double k, double v) => Math.Tanh(q) + 2 * k - v * v;
    }

    static Tensor Random(params long[] shape) => randn(shape, ScalarType.Float64);

    // Taylor series of erf (accurate to ~1e-9 for |x| < 4 in double); beyond, |erf| = 1 within 2e-8.
    static double Erf(double x)
    {
        if (Math.Abs(x) >= 4) return Math.Sign(x);
        double sum = 0, term = x;
        for (var n = 0; n < 80; n++)
        {
            sum += term / (2 * n + 1);
            term *= -x * x / (n + 1);
        }
        return 2 / Math.Sqrt(Math.PI) * sum;
    }

    static double Gelu(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));

    [Fact]
    public void Rmt_reads_with_keys_and_writes_outer_products()
    {
        manual_seed(1);
        // n = 2: r = 2 reads of D_v = d / 2 = 3 from a D_k = 4 by 3 memory.
        var options = new ConnectionOptions { Kind = ConnectionKind.ResidualMatrix, Streams = 2 };
        const int d = 6, r = 2, dk = 4, dv = 3;
        var branch = new TestBranch(d);
        branch.to(ScalarType.Float64);
        using var connection = (ResidualMatrixConnection)Connection.Create(options, d, 0, branch);
        connection.to(ScalarType.Float64);
        Assert.Equal((r, dk, dv), ResidualMatrixConnection.Shape(options, d));
        using var x = Random(2, 3, dk, dv);
        using var output = connection.call(x);
        Assert.Equal([2L, 3, dk, dv], output.shape);
        var (xs, read, write, outs) = (Reference.Values(x), Reference.Values(connection.ReadKeys), Reference.Values(connection.WriteKeys), Reference.Values(output));
        for (var token = 0; token < 6; token++)
        {
            var u = new double[d];
            for (var s = 0; s < r; s++)
                for (var v = 0; v < dv; v++)
                    for (var k = 0; k < dk; k++)
                        u[s * dv + v] += read[s * dk + k] * xs[token * dk * dv + k * dv + v];
            using var uTensor = tensor(u, [1, d], ScalarType.Float64);
            using var yTensor = branch.call(uTensor);
            var y = Reference.Values(yTensor);
            for (var k = 0; k < dk; k++)
                for (var v = 0; v < dv; v++)
                {
                    var expected = xs[token * dk * dv + k * dv + v];
                    for (var s = 0; s < r; s++) expected += write[k * r + s] * y[s * dv + v];
                    Assert.Equal(expected, outs[token * dk * dv + k * dv + v], 1e-12);
                }
        }
    }

    [Fact]
    public void Rmt_stores_the_embedding_and_retrieves_the_output_with_keys()
    {
        manual_seed(2);
        var options = new ConnectionOptions { Kind = ConnectionKind.ResidualMatrix, Streams = 2 };
        const int d = 4, r = 2, dk = 4, dv = 2;
        using var ends = (ResidualMatrixEnds)StreamEnds.Create(options, d);
        ends.to(ScalarType.Float64);
        var storage = Reference.Values(Reference.Parameter(ends, "storage_keys"));
        var retrieval = Reference.Values(Reference.Parameter(ends, "retrieval_keys"));
        using var h = Random(1, 2, d);
        using var memory = ends.Expand(h);
        using var back = ends.Collapse(memory);
        var (hs, ms, bs) = (Reference.Values(h), Reference.Values(memory), Reference.Values(back));
        for (var token = 0; token < 2; token++)
        {
            var expectedMemory = new double[dk * dv];
            for (var k = 0; k < dk; k++)
                for (var v = 0; v < dv; v++)
                    for (var s = 0; s < r; s++)
                        expectedMemory[k * dv + v] += storage[k * r + s] * hs[token * d + s * dv + v];
            for (var i = 0; i < dk * dv; i++) Assert.Equal(expectedMemory[i], ms[token * dk * dv + i], 1e-12);
            for (var s = 0; s < r; s++)
                for (var v = 0; v < dv; v++)
                {
                    var expected = 0.0;
                    for (var k = 0; k < dk; k++) expected += retrieval[s * dk + k] * expectedMemory[k * dv + v];
                    Assert.Equal(expected, bs[token * d + s * dv + v], 1e-12);
                }
        }
    }

    [Fact]
    public void Muddformer_attention_takes_dense_weighted_sums_of_every_earlier_slot()
    {
        manual_seed(3);
        const int d = 5, slots = 4, block = 2, used = block + 1, ways = 4;
        var options = new ConnectionOptions { Kind = ConnectionKind.MultiwayDense, Streams = slots };
        using var connection = (MultiwayDenseConnection)Connection.Create(options, d, 2 * block, new ThreeInputBranch());
        connection.to(ScalarType.Float64);
        Reference.Randomize(connection, 0.5);   // W2 and the static weights away from their start
        var w1 = Reference.Values(Reference.Parameter(connection, "dense.w1.weight"));
        var w2 = Reference.Values(Reference.Parameter(connection, "dense.w2.weight"));
        var bias = Reference.Values(Reference.Parameter(connection, "dense.bias"));
        using var x = Random(1, 3, slots, d);
        using var output = connection.call(x);
        var (xs, outs) = (Reference.Values(x), Reference.Values(output));
        const int hidden = ways * used;
        for (var token = 0; token < 3; token++)
        {
            double X(int slot, int c) => xs[(token * slots + slot) * d + c];
            // Weights from the newest slot (b = 2), RMS-normalised without gain.
            var ms = Enumerable.Range(0, d).Average(c => X(block, c) * X(block, c));
            var normed = Enumerable.Range(0, d).Select(c => X(block, c) / Math.Sqrt(ms + 1e-6)).ToArray();
            var activated = Enumerable.Range(0, hidden).Select(i => Gelu(Enumerable.Range(0, d).Sum(c => w1[i * d + c] * normed[c]))).ToArray();
            var weights = Enumerable.Range(0, hidden).Select(o => bias[o] + Enumerable.Range(0, hidden).Sum(i => w2[o * hidden + i] * activated[i])).ToArray();
            double Way(int way, int c) => Enumerable.Range(0, used).Sum(j => weights[way * used + j] * X(j, c));
            for (var slot = 0; slot < slots; slot++)
                for (var c = 0; c < d; c++)
                {
                    var expected = slot == block + 1 ? Way(3, c) + ThreeInputBranch.Value(Way(0, c), Way(1, c), Way(2, c)) : X(slot, c);
                    Assert.Equal(expected, outs[(token * slots + slot) * d + c], 1e-6);
                }
        }
    }

    [Fact]
    public void Muddformer_mlp_updates_its_slot_and_the_end_aggregates_every_slot()
    {
        manual_seed(4);
        const int d = 3, slots = 3;
        var options = new ConnectionOptions { Kind = ConnectionKind.MultiwayDense, Streams = slots };
        var branch = new TestBranch(d);
        using var mlp = Connection.Create(options, d, 3, branch);   // block 1's MLP: slot 2
        mlp.to(ScalarType.Float64);
        using var x = Random(1, 2, slots, d);
        using var output = mlp.call(x);
        using var slot2 = x.select(2, 2);
        using var y = branch.call(slot2);
        var (xs, ys, outs) = (Reference.Values(x), Reference.Values(y), Reference.Values(output));
        for (var token = 0; token < 2; token++)
            for (var slot = 0; slot < slots; slot++)
                for (var c = 0; c < d; c++)
                    Assert.Equal(xs[(token * slots + slot) * d + c] + (slot == 2 ? ys[token * d + c] : 0), outs[(token * slots + slot) * d + c], 1e-12);

        using var ends = (MultiwayDenseEnds)StreamEnds.Create(options, d);
        ends.to(ScalarType.Float64);
        Reference.Randomize(ends, 0.5);
        using var weights = ends.Weights(x);                                   // [1, 2, 1, 3], checked above for the attention ways
        using var collapsed = ends.Collapse(x);
        var (ws, cs) = (Reference.Values(weights), Reference.Values(collapsed));
        for (var token = 0; token < 2; token++)
            for (var c = 0; c < d; c++)
                Assert.Equal(Enumerable.Range(0, slots).Sum(j => ws[token * slots + j] * xs[(token * slots + j) * d + c]), cs[token * d + c], 1e-12);
        using var embedded = ends.Expand(x.select(2, 0));
        Assert.Equal(Reference.Values(x.select(2, 0)), Reference.Values(embedded.select(2, 0)));
        Assert.All(Reference.Values(embedded.narrow(2, 1, slots - 1)), v => Assert.Equal(0.0, v));
    }

    [Theory]
    [InlineData(ConnectionKind.ResidualMatrix, 1)]
    [InlineData(ConnectionKind.MultiwayDense, 2)]
    [InlineData(ConnectionKind.MultiwayDense, 3)]
    public void Gradients_match_central_finite_differences(ConnectionKind kind, int sublayer)
    {
        manual_seed(5);
        const int d = 4;
        var options = new ConnectionOptions { Kind = kind, Streams = kind == ConnectionKind.ResidualMatrix ? 2 : 3 };
        nn.Module<Tensor, Tensor> branch = kind == ConnectionKind.MultiwayDense && sublayer % 2 == 0 ? new ThreeInputBranch() : new TestBranch(d);
        using var connection = Connection.Create(options, d, sublayer, branch);
        connection.to(ScalarType.Float64);
        Reference.Randomize(connection, 0.4);
        var stateWidth = connection.DModel;
        using var x = Random(1, 2, connection.Streams, stateWidth).requires_grad_(true);
        using var probe = Random(1, 2, connection.Streams, stateWidth);
        double Loss() { using var _ = no_grad(); using var o = connection.call(x); return (o * probe).sum().ToDouble(); }
        using (var output = connection.call(x))
        using (var loss = (output * probe).sum())
            loss.backward();
        var checkedTensors = connection.parameters().Select(p => (Tensor)p).Append(x).ToList();
        foreach (var tensor in checkedTensors)
        {
            var analytic = Reference.Values(tensor.grad!);
            var count = Math.Min(6, tensor.numel());
            for (var i = 0; i < count; i++)
            {
                var index = i * (tensor.numel() / count);
                using var flat = tensor.detach().view(-1);
                var original = flat[index].ToDouble();
                const double h = 1e-6;
                using (no_grad()) flat[index] = original + h;
                var plus = Loss();
                using (no_grad()) flat[index] = original - h;
                var minus = Loss();
                using (no_grad()) flat[index] = original;
                Assert.Equal((plus - minus) / (2 * h), analytic[index], 1e-5);
            }
        }
    }

    static GptConfig Small(ConnectionKind kind, int layers = 2, int dModel = 16) => new()
    {
        VocabSize = 24, DModel = dModel, Layers = layers, Heads = 2, SeqLen = 8,
        Connection = new ConnectionOptions { Kind = kind, Streams = 4 },
    };

    [Theory]
    [InlineData(ConnectionKind.ResidualMatrix)]
    [InlineData(ConnectionKind.MultiwayDense)]
    public void A_few_training_steps_reduce_the_loss(ConnectionKind kind)
    {
        manual_seed(6);
        using var model = new Gpt(Small(kind));
        using var ids = randint(0, 24, [4, 8]);
        using var targets = ids.roll(1, 1);
        var optimizer = optim.AdamW(model.parameters(), lr: 1e-2);
        var losses = new List<double>();
        for (var step = 0; step < 25; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = model.Loss(ids, targets);
            loss.backward();
            optimizer.step();
            losses.Add(loss.ToDouble());
        }
        Assert.True(losses[^1] < losses[0] - 0.5, $"{kind}: loss {losses[0]:F3} → {losses[^1]:F3}");
    }

    [Theory]
    [InlineData(ConnectionKind.ResidualMatrix, WeightLayout.MhcNet)]
    [InlineData(ConnectionKind.ResidualMatrix, WeightLayout.Hf)]
    [InlineData(ConnectionKind.MultiwayDense, WeightLayout.MhcNet)]
    [InlineData(ConnectionKind.MultiwayDense, WeightLayout.Hf)]
    public void Weights_round_trip_with_the_documented_names(ConnectionKind kind, WeightLayout layout)
    {
        using var temp = TestPaths.Temp();
        manual_seed(7);
        using var source = new Gpt(Small(kind));
        Reference.Randomize(source, 0.2);
        manual_seed(8);
        using var target = new Gpt(Small(kind));
        using var ids = randint(0, 24, [1, 8]);
        var path = temp.File("w.safetensors");
        ModelWeights.Save(source, path, new WeightFileOptions { Layout = layout });
        var names = ModelWeights.Open(path).Tensors.Select(t => t.Name).ToHashSet();
        var prefix = layout == WeightLayout.Hf ? "model." : "";
        var attention = layout == WeightLayout.Hf ? "model.layers.1.attn_hc" : "blocks.1.attn_conn";
        string[] expected = kind == ConnectionKind.ResidualMatrix
            ? [$"{prefix}stream_ends.storage_keys", $"{prefix}stream_ends.retrieval_keys", $"{attention}.read_keys", $"{attention}.write_keys"]
            : [$"{prefix}stream_ends.dense.w1.weight", $"{prefix}stream_ends.dense.bias", $"{attention}.dense.w2.weight", $"{attention}.dense.bias"];
        Assert.All(expected, name => Assert.Contains(name, names));
        ModelWeights.Load(target, path);
        source.eval();
        target.eval();
        using var a = source.call(ids);
        using var b = target.call(ids);
        Assert.Equal(Reference.Values(a), Reference.Values(b));
    }

    [Fact]
    public void Invalid_sizes_are_refused_naming_the_value()
    {
        var message = Assert.Throws<ArgumentException>(() => (Small(ConnectionKind.ResidualMatrix, dModel: 18) with { Heads = 1 }).Validate()).Message;
        Assert.Contains("d_model = 18", message, StringComparison.Ordinal);
        Assert.Contains("rmt", message, StringComparison.Ordinal);
        var deep = Assert.Throws<ArgumentException>(() => Small(ConnectionKind.MultiwayDense, layers: 64).Validate()).Message;
        Assert.Contains("layers = 64", deep, StringComparison.Ordinal);
        var options = new ConnectionOptions { Kind = ConnectionKind.MultiwayDense, Streams = 3 };
        var branch = Assert.Throws<ArgumentException>(() => Connection.Create(options, 4, 2, new TestBranch(4))).Message;
        Assert.Contains("separate query, key and value", branch, StringComparison.Ordinal);
        var slots = Assert.Throws<ArgumentException>(() => Connection.Create(options, 4, 4, new ThreeInputBranch())).Message;
        Assert.Contains("streams = 3", slots, StringComparison.Ordinal);
    }

    static StabilityProfile Profile(Gpt model)
    {
        using var ids = randint(0, 24, [1, 8]);
        using var _ = no_grad();
        var ends = model.modules().OfType<StreamEnds>().Single();
        return StabilityProbe.Measure(model.Connections, model.StreamStates(ids), ends);
    }

    [Theory]
    [InlineData(ConnectionKind.Residual)]
    [InlineData(ConnectionKind.MultiwayDense)]
    public void Residual_and_fresh_muddformer_carry_the_signal_unchanged(ConnectionKind kind)
    {
        manual_seed(9);
        using var model = new Gpt(Small(kind) with { Connection = kind == ConnectionKind.Residual ? ConnectionOptions.Residual : Small(kind).Connection });
        var profile = Profile(model);
        Assert.All(profile.Sublayers, s =>
        {
            Assert.Equal(1.0, s.SignalGain, 1e-6);
            Assert.Equal(0.0, s.SignalIdentityError, 1e-6);
        });
    }

    [Fact]
    public void Rmt_signal_gain_compares_the_write_keys_with_the_storage_keys()
    {
        // Keys chosen so that retrieval · storage = 2·I (the input's path E), retrieval · write = 6·I for sub-layer 0 and 0 for
        // the others: P_0 v = 3·E v, P_k v = 0.
        manual_seed(10);
        using var model = new Gpt(Small(ConnectionKind.ResidualMatrix));
        const int r = 4, dk = 16;
        using (no_grad())
        {
            var retrieval = Reference.Parameter(model, "stream_ends.retrieval_keys");
            var storage = Reference.Parameter(model, "stream_ends.storage_keys");
            retrieval.zero_();
            storage.zero_();
            for (var s = 0; s < r; s++)
            {
                retrieval[s, s] = tensor(2f);
                storage[s, s] = tensor(1f);
            }
            foreach (var (k, connection) in model.Connections.Select((c, k) => (k, (ResidualMatrixConnection)c)))
            {
                connection.WriteKeys.zero_();
                for (var s = 0; s < r; s++) connection.WriteKeys[k == 0 ? s : dk - 1 - s, s] = tensor(k == 0 ? 3f : 1f);
            }
        }
        var profile = Profile(model);
        Assert.Equal(3.0, profile.Sublayers[0].SignalGain, 1e-5);
        Assert.Equal(2.0, profile.Sublayers[0].SignalIdentityError, 1e-5);
        Assert.All(profile.Sublayers.Skip(1), s =>
        {
            Assert.Equal(0.0, s.SignalGain, 1e-6);
            Assert.Equal(1.0, s.SignalIdentityError, 1e-6);
        });
        Assert.All(profile.Sublayers, s => Assert.Equal(1.0, s.ForwardGain, 1e-6));   // the memory itself is carried unchanged
    }

    [Fact]
    public void Fresh_mhc_carries_the_signal_as_the_input_within_its_mixing()
    {
        // mHC at initialisation: H_post = 1 and a doubly stochastic H_res, so every sub-layer's output reaches the head
        // with the input's factor n; the signal gain is the token mean of (1ᵀ·C_(k+1)·H_post(k)) / (1ᵀ·C_0·1), near 1.
        manual_seed(11);
        using var model = new Gpt(Small(ConnectionKind.Manifold));
        var profile = Profile(model);
        Assert.All(profile.Sublayers, s => Assert.Equal(1.0, s.SignalGain, 0.05));
    }
}
