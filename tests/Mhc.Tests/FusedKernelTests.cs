using Mhc.Connections;
using Mhc.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>The fused kernels must compute exactly what the reference path (one op per term, autograd) computes.</summary>
public class FusedKernelTests
{
    public static readonly TheoryData<ConnectionKind, int> Kinds = new()
    {
        { ConnectionKind.HyperStatic, 4 },
        { ConnectionKind.HyperDynamic, 3 },
        { ConnectionKind.HyperDynamic, 6 },   // more streams than one group of four rows in the mixing passes
        { ConnectionKind.Manifold, 4 },
        { ConnectionKind.Manifold, 2 },
        { ConnectionKind.Manifold, 5 },
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Fused_forward_and_gradients_equal_the_reference(ConnectionKind kind, int n)
    {
        manual_seed(60);
        var d = ConnectionFixture.D;
        Connection Build(bool fused)
        {
            manual_seed(61);
            var c = Connection.Create(new ConnectionOptions { Kind = kind, Streams = n, Fused = fused }, d, 1, new TestBranch(d));
            c.to(ScalarType.Float64);
            return c;
        }
        using var fused = Build(true);
        using var reference = Build(false);
        Reference.Randomize(fused, 0.7);
        reference.load_state_dict(fused.state_dict());
        using var x0 = ConnectionFixture.State(n);
        using var upstream = randn_like(x0);
        var results = new List<(double[] Output, double[] InputGrad, Dictionary<string, double[]> Grads)>();
        foreach (var c in new[] { fused, reference })
        {
            using var x = x0.detach().clone().requires_grad_(true);
            using var output = c.call(x);
            using (var loss = (output * upstream).sum()) loss.backward();
            results.Add((Reference.Values(output), Reference.Values(x.grad!),
                c.named_parameters().ToDictionary(p => p.name, p => Reference.Values(p.parameter.grad!))));
        }
        AssertClose(results[1].Output, results[0].Output, "output");
        AssertClose(results[1].InputGrad, results[0].InputGrad, "input gradient");
        foreach (var (name, grad) in results[1].Grads) AssertClose(grad, results[0].Grads[name], name);
    }

    [Theory]
    [InlineData(150, 3, 5, 1.0, 20)]   // several blocks; n·d not a whole number of vectors
    [InlineData(37, 4, 16, 3.0, 7)]
    [InlineData(15, 4, 8, 5e3, 20)]    // log-domain Sinkhorn, saturated sigmoids
    [InlineData(300, 4, 40, 1.0, 20)]  // several blocks per work item; φ's gradient in two slices of its rows
    public void Manifold_connection_passes_equal_the_formulas(int tokens, int n, int d, double rawScale, int iterations)
    {
        manual_seed(64);
        var width = n * n + 2 * n;
        var v = (randn([tokens, n * d], ScalarType.Float64) * 1.5).requires_grad_(true);
        // φ scaled so that the projection v·φ has about rawScale's spread.
        var phi = (randn([n * d, width], ScalarType.Float64) * (rawScale / (1.5 * Math.Sqrt(n * d)))).requires_grad_(true);
        var gates = new[] { tensor(0.7), tensor(-1.3), tensor(0.9), randn(n, dtype: ScalarType.Float64), randn(n, dtype: ScalarType.Float64), randn([n, n], ScalarType.Float64) }
            .Select(t => t.requires_grad_(true)).ToArray();
        var (g, gu, gPost) = (randn([tokens, n * d], ScalarType.Float64), randn([tokens, d], ScalarType.Float64), randn([tokens, n], ScalarType.Float64));
        List<double[]> fused;
        using (no_grad())
        {
            var f = ManifoldConnectionKernels.Forward(v, Manifold(phi, gates), n, iterations, 1e-6, branchInput: true);
            var (gx, gradients) = ManifoldConnectionKernels.Backward(v, Manifold(phi, gates), n, iterations, f, g, gu, gPost);
            fused = new[] { f.Pre, f.Post, f.Res, f.BranchInput!, gx }.Concat(gradients.All).Select(Reference.Values).ToList();
        }

        // The formulas of spec §5 one op at a time; H_res·x's gradients (to x and to H_res) are part of the backward.
        var projected = v.matmul(phi) * (v.square().mean([-1], keepdim: true) + 1e-6).rsqrt();
        var pre = (gates[0] * projected.narrow(-1, 0, n) + gates[3]).sigmoid();
        var post = (gates[1] * projected.narrow(-1, n, n) + gates[4]).sigmoid() * 2;
        var res = Sinkhorn.Project(gates[2] * projected.narrow(-1, 2 * n, n * n).reshape(tokens, n, n) + gates[5], iterations);
        var x = v.view(tokens, n, d);
        var u = (pre.unsqueeze(-1) * x).sum(1);
        ((res.matmul(x).view(tokens, n * d) * g).sum() + (u * gu).sum() + (post * gPost).sum()).backward();
        var expected = new[] { pre, post, res, u, v.grad!, phi.grad! }.Concat(gates.Select(p => p.grad!)).Select(Reference.Values).ToList();

        string[] names = ["pre", "post", "res", "branch input", "state gradient", "phi gradient", "alpha_pre", "alpha_post", "alpha_res", "b_pre", "b_post", "b_res"];
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.All(fused[i], value => Assert.True(double.IsFinite(value), $"{names[i]} is not finite"));
            AssertClose(expected[i], fused[i], names[i]);
        }
    }

    [Theory]
    [InlineData(150, 3, 5, true, 0.0)]     // several chunks; d not a whole number of vectors
    [InlineData(37, 4, 16, false, 0.0)]    // the no-tanh variant
    [InlineData(20, 2, 64, true, 50.0)]    // rows far from zero mean: the centred form must not cancel
    public void Hyper_connection_passes_equal_the_formulas(int tokens, int n, int d, bool useTanh, double offset)
    {
        manual_seed(65);
        var x = (randn([tokens, n, d], ScalarType.Float64) * 1.5 + offset).requires_grad_(true);
        var parameters = new[]
        {
            randn([d, n + 1], ScalarType.Float64) * 0.3, randn([d], ScalarType.Float64) * 0.3, 1 + randn([d], ScalarType.Float64) * 0.2,
            randn([d], ScalarType.Float64) * 0.2, randn([n, n + 1], ScalarType.Float64), randn([n], ScalarType.Float64), tensor(0.7), tensor(-1.3),
        }.Select(t => t.requires_grad_(true)).ToArray();
        var (g, gu, gPost) = (randn([tokens, n, d], ScalarType.Float64), randn([tokens, d], ScalarType.Float64), randn([tokens, n], ScalarType.Float64));
        List<double[]> fused;
        using (no_grad())
        {
            var typed = Hyper(parameters);
            var f = HyperConnectionKernels.Forward(x, typed, useTanh, 1e-5, branchInput: true);
            var (gx, grads) = HyperConnectionKernels.Backward(x, typed, useTanh, f, g, gu, gPost);
            fused = new[] { f.Pre, f.Post, f.Res, f.BranchInput!, gx }.Concat(grads.All).Select(Reference.Values).ToList();
        }

        // Spec §4 one op at a time: per-stream LayerNorm, projections, tanh, gates; Res = Arᵀ.
        var xn = nn.functional.layer_norm(x, [d], parameters[2], parameters[3], 1e-5);
        Tensor Act(Tensor z) => useTanh ? z.tanh() : z;
        var alpha = parameters[6] * Act(xn.matmul(parameters[0])) + parameters[4];
        var post = parameters[7] * Act(xn.matmul(parameters[1])) + parameters[5];
        var pre = alpha.select(-1, 0);
        var res = alpha.narrow(-1, 1, n).transpose(-1, -2);
        var u = (pre.unsqueeze(-1) * x).sum(1);
        ((res.matmul(x) * g).sum() + (u * gu).sum() + (post * gPost).sum()).backward();
        var expected = new[] { pre, post, res, u, x.grad! }.Concat(parameters.Select(p => p.grad!)).Select(Reference.Values).ToList();

        string[] names = ["pre", "post", "res", "branch input", "state gradient", "dynamic_alpha", "dynamic_beta", "norm weight", "norm bias",
            "static_alpha", "static_beta", "alpha_scale", "beta_scale"];
        for (var i = 0; i < expected.Count; i++) AssertClose(expected[i], fused[i], names[i]);
    }

    [Fact]
    public void Kernels_take_an_empty_batch()
    {
        // No tokens: empty outputs and zero parameter gradients, not an error.
        using var _ = no_grad();
        const int n = 4, d = 8;
        var v = zeros(0, n * d, dtype: ScalarType.Float64);
        var phi = ones([n * d, n * n + 2 * n], ScalarType.Float64);
        var manifold = new ManifoldParameters(phi, tensor(0.7), tensor(-1.3), tensor(0.9), zeros(n, dtype: ScalarType.Float64), zeros(n, dtype: ScalarType.Float64),
            zeros([n, n], ScalarType.Float64));
        var f = ManifoldConnectionKernels.Forward(v, manifold, n, 20, 1e-6, branchInput: true);
        var (gx, gradients) = ManifoldConnectionKernels.Backward(v, manifold, n, 20, f, zeros_like(v), zeros(0, d, dtype: ScalarType.Float64), zeros(0, n, dtype: ScalarType.Float64));
        Assert.Equal(0, gx.numel());
        Assert.Equal(phi.shape, gradients.Phi.shape);
        Assert.All(gradients.All.SelectMany(Reference.Values), value => Assert.Equal(0.0, value));

        var x = zeros([0, n, d], ScalarType.Float64);
        var hyper = new HyperParameters(ones([d, n + 1], ScalarType.Float64), ones([d], ScalarType.Float64), ones([d], ScalarType.Float64),
            ones([d], ScalarType.Float64), ones([n, n + 1], ScalarType.Float64), ones([n], ScalarType.Float64), tensor(0.7), tensor(-1.3));
        var h = HyperConnectionKernels.Forward(x, hyper, useTanh: true, 1e-5, branchInput: true);
        var (hx, grads) = HyperConnectionKernels.Backward(x, hyper, useTanh: true, h, zeros_like(x), zeros(0, d, dtype: ScalarType.Float64), zeros(0, n, dtype: ScalarType.Float64));
        Assert.Equal(0, hx.numel());
        Assert.All(grads.All.SelectMany(Reference.Values), value => Assert.Equal(0.0, value));
    }

    [Fact]
    public void State_gradient_written_over_the_output_gradient_is_the_same_gradient()
    {
        // The chain hands each sub-layer's output gradient over to be written over; the result must not change.
        manual_seed(66);
        const int tokens = 40, n = 4, d = 24;
        using var _ = no_grad();
        var x = randn([tokens, n, d], ScalarType.Float64);
        var (g, gu, gPost) = (randn([tokens, n, d], ScalarType.Float64), randn([tokens, d], ScalarType.Float64), randn([tokens, n], ScalarType.Float64));
        var gates = new[] { tensor(0.7), tensor(-1.3), tensor(0.9), randn(n, dtype: ScalarType.Float64), randn(n, dtype: ScalarType.Float64), randn([n, n], ScalarType.Float64) };
        var v = x.view(tokens, n * d);
        var phi = randn([n * d, n * n + 2 * n], ScalarType.Float64) * 0.1;
        var f = ManifoldConnectionKernels.Forward(v, Manifold(phi, gates), n, 20, 1e-6, branchInput: false);
        var hyper = Hyper(
        [
            randn([d, n + 1], ScalarType.Float64), randn([d], ScalarType.Float64), randn([d], ScalarType.Float64), randn([d], ScalarType.Float64),
            randn([n, n + 1], ScalarType.Float64), randn([n], ScalarType.Float64), tensor(0.7), tensor(-1.3),
        ]);
        var h = HyperConnectionKernels.Forward(x, hyper, useTanh: true, 1e-5, branchInput: false);
        // Each kernel's state gradient and the gradients it reads off g (H_res's) before writing over it.
        var kernels = new Func<Tensor, bool, Tensor[]>[]
        {
            (grad, overwrite) => StreamMixing.ReadBackward(x, f.Pre, f.Res.view(tokens, n, n), gu, grad, overwrite) is var (gx, gpre, gres) ? [gx, gpre, gres] : [],
            (grad, overwrite) => HyperConnectionKernels.Backward(x, hyper, useTanh: true, h, grad, gu, gPost, overwrite) is var (gx, grads) ? [gx, .. grads.All] : [],
            (grad, overwrite) => ManifoldConnectionKernels.Backward(v, Manifold(phi, gates), n, 20, f, grad.view(tokens, n * d), gu, gPost, overwrite) is var (gx, gradients) ? [gx, .. gradients.All] : [],
        };
        foreach (var kernel in kernels)
        {
            var expected = kernel(g, false);
            var handedOver = g.clone();
            var actual = kernel(handedOver, true);
            Assert.True(CpuTensor.Span<double>(actual[0]).Overlaps(CpuTensor.Span<double>(handedOver)), "the gradient was not written in place");
            Assert.Equal(expected.SelectMany(Reference.Values), actual.SelectMany(Reference.Values));
        }
    }

    [Fact]
    public void Kernel_reductions_do_not_depend_on_the_thread_count()
    {
        // libtorch's own matmuls may change with the thread count; our kernels' sums use fixed chunks and must not.
        var before = get_num_threads();
        try
        {
            double[] Run(int threads)
            {
                set_num_threads(threads);
                manual_seed(63);
                const int n = 4;
                using var _ = no_grad();
                var parameters = new[] { tensor(0.5f), tensor(0.5f), tensor(0.5f), randn(n), randn(n), randn(n, n) };
                // 1,200 tokens: many work items, each adding its partial sums of the gate gradients.
                var x = randn(4, 300, n, 64);
                var v = x.view(1200, n * 64);
                var phi = randn(n * 64, n * n + 2 * n) * 0.05f;
                var f = ManifoldConnectionKernels.Forward(v, Manifold(phi, parameters), n, 20, 1e-6, branchInput: true);
                var (pre, post, res) = (f.Pre.view(4, 300, n), f.Post.view(4, 300, n), f.Res.view(4, 300, n, n));
                var y = randn(4, 300, 64);
                var g = randn_like(x);
                var (gpost, gy) = StreamMixing.WriteBackward(post, y, g);
                var (gx, gpre, gres) = StreamMixing.ReadBackward(x, pre, res, randn_like(y), g);
                var (gv, gradients) = ManifoldConnectionKernels.Backward(v, Manifold(phi, parameters), n, 20, f, g.view(v.shape), randn(1200, 64), gpost.view(1200, n));
                var hyperParameters = Hyper([randn(64, n + 1), randn(64), randn(64), randn(64), randn(n, n + 1), randn(n), tensor(0.5f), tensor(0.5f)]);
                var h = HyperConnectionKernels.Forward(x.view(1200, n, 64), hyperParameters, useTanh: true, 1e-5, branchInput: true);
                var (hx, hyperGrads) = HyperConnectionKernels.Backward(x.view(1200, n, 64), hyperParameters, useTanh: true, h, g.view(1200, n, 64),
                    randn(1200, 64), gpost.view(1200, n));
                return new[] { f.Pre, f.Post, f.Res, f.BranchInput!, gv, gx, gres, gpost, gy, gpre, StreamMixing.Write(x, res, post, y), StreamMixing.Read(x, pre) }
                    .Concat(gradients.All).Concat([h.Pre, h.Post, h.Res, h.BranchInput!, hx]).Concat(hyperGrads.All).SelectMany(Reference.Values).ToArray();
            }
            Assert.Equal(Run(1), Run(2));
        }
        finally
        {
            set_num_threads(before);
        }
    }

    /// <summary>mHC's kernel parameters from φ and the six gates in the order α_pre, α_post, α_res, b_pre, b_post, b_res.</summary>
    static ManifoldParameters Manifold(Tensor phi, Tensor[] gates) => new(phi, gates[0], gates[1], gates[2], gates[3], gates[4], gates[5]);

    /// <summary>Dynamic HC's kernel parameters in the record's order.</summary>
    static HyperParameters Hyper(Tensor[] p) => new(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]);

    static void AssertClose(double[] expected, double[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-9 * (1 + Math.Abs(expected[i])),
                $"{what}[{i}]: reference {expected[i]}, fused {actual[i]}");
    }
}
