using Mhc.Connections;
using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>The head and the loss in one (no whole logits) equal the plain cross-entropy of the logits: value and gradients.</summary>
public class LinearCrossEntropyTests
{
    [Theory]
    [InlineData(400, 50_000, true)]    // 167 rows per chunk: three chunks, the last one short
    [InlineData(400, 50_000, false)]
    [InlineData(7, 300, true)]         // one chunk
    [InlineData(7, 300, false)]
    [InlineData(5, 7, true)]           // rows shorter than a vector (8 doubles in 512 bits)
    public void Equals_the_cross_entropy_of_the_logits_with_its_gradients(int rows, int vocab, bool kernel)
    {
        manual_seed(12);
        var h = randn([rows, 8], ScalarType.Float64).requires_grad_(true);
        var w = randn([vocab, 8], ScalarType.Float64).requires_grad_(true);
        using var y = randint(0, vocab, [rows]);
        var fused = LinearCrossEntropy.Mean(h, w, y, kernel);
        fused.backward();
        var (fusedLoss, fusedH, fusedW) = (fused.ToDouble(), Reference.Values(h.grad!), Reference.Values(w.grad!));
        h.grad!.zero_();
        w.grad!.zero_();
        var plain = nn.functional.cross_entropy(h.matmul(w.t()), y);
        plain.backward();
        Assert.Equal(plain.ToDouble(), fusedLoss, 1e-12);
        AssertClose(Reference.Values(h.grad!), fusedH);
        AssertClose(Reference.Values(w.grad!), fusedW);
        using var _ = no_grad();
        Assert.Equal(plain.ToDouble(), LinearCrossEntropy.Mean(h, w, y, kernel).ToDouble(), 1e-12);
    }

    [Theory]
    [InlineData(300, 5_000)]
    [InlineData(6, 13)]    // rows shorter than a vector of 16 floats
    public void Float32_kernel_gives_the_tensor_paths_loss_and_gradients(int rows, int vocab)
    {
        manual_seed(15);
        using var h0 = randn([rows, 16]);
        using var w0 = randn([vocab, 16]);
        using var y = randint(0, vocab, [rows]);
        (double Loss, double[] H, double[] W) Run(bool kernel)
        {
            using var h = h0.clone().requires_grad_(true);
            using var w = w0.clone().requires_grad_(true);
            using var loss = LinearCrossEntropy.Mean(h, w, y, kernel);
            loss.backward();
            return (loss.ToDouble(), Reference.Values(h.grad!), Reference.Values(w.grad!));
        }
        var (kernelLoss, kernelH, kernelW) = Run(kernel: true);
        var (tensorLoss, tensorH, tensorW) = Run(kernel: false);
        Assert.Equal(tensorLoss, kernelLoss, 1e-5 * Math.Abs(tensorLoss));
        for (var i = 0; i < tensorH.Length; i++) Assert.True(Math.Abs(tensorH[i] - kernelH[i]) <= 1e-6, $"h[{i}]: {tensorH[i]} vs {kernelH[i]}");
        for (var i = 0; i < tensorW.Length; i++) Assert.True(Math.Abs(tensorW[i] - kernelW[i]) <= 1e-6, $"w[{i}]: {tensorW[i]} vs {kernelW[i]}");
    }

    [Fact]
    public void Float32_agrees_with_float64()
    {
        manual_seed(14);
        using var h = randn([300, 16], ScalarType.Float64);
        using var w = randn([5_000, 16], ScalarType.Float64);
        using var y = randint(0, 5_000, [300]);
        using var _ = no_grad();
        var exact = LinearCrossEntropy.Mean(h, w, y).ToDouble();
        Assert.Equal(exact, LinearCrossEntropy.Mean(h.to(ScalarType.Float32), w.to(ScalarType.Float32), y).ToDouble(), 1e-4);
    }

    [Fact]
    public void A_target_outside_the_vocabulary_is_refused()
    {
        using var h = randn([4, 8]);
        using var w = randn([10, 8]);
        using var y = tensor(new long[] { 1, 2, 10, 3 });
        using var _ = no_grad();
        var e = Assert.Throws<ArgumentException>(() => LinearCrossEntropy.Mean(h, w, y));
        Assert.Contains("target 10 is outside the vocabulary 0..9", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Gpt_loss_and_its_gradients_equal_those_of_its_logits(bool tied)
    {
        manual_seed(13);
        using var model = new Gpt(new GptConfig { VocabSize = 40, DModel = 16, Layers = 1, Heads = 2, SeqLen = 8, TieEmbeddings = tied, Connection = new ConnectionOptions { Kind = ConnectionKind.Manifold } });
        model.to(ScalarType.Float64);
        using var ids = randint(0, 40, [3, 8]);
        using var targets = randint(0, 40, [3, 8]);
        model.Loss(ids, targets).backward();
        var fused = model.parameters().Select(p => Reference.Values(p.grad!)).ToList();
        model.zero_grad();
        nn.functional.cross_entropy(model.call(ids).flatten(0, 1), targets.flatten()).backward();
        var plain = model.parameters().Select(p => Reference.Values(p.grad!)).ToList();
        for (var i = 0; i < plain.Count; i++) AssertClose(plain[i], fused[i]);
    }

    static void AssertClose(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-12 * (1 + Math.Abs(expected[i])), $"[{i}]: {expected[i]} vs {actual[i]}");
    }
}
