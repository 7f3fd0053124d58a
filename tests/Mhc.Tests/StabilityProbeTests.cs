using Mhc.Connections;
using Mhc.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

public class StabilityProbeTests
{
    /// <summary>Static HC with hand-set H_res matrices: every gain must equal the loop-computed product.</summary>
    [Fact]
    public void Gains_equal_hand_multiplied_static_matrices()
    {
        const int n = 2;
        var d = ConnectionFixture.D;
        // Res = Arᵀ; choose Ar per layer. Signed entries, so max |row sum| differs from the ∞-norm.
        double[][] ar = [[1.5, -0.5, 0.25, 1.0], [0.5, 0.7, -0.2, 1.1], [2.0, 0.0, -1.0, 0.5]];
        var connections = new List<Connection>();
        for (var k = 0; k < ar.Length; k++)
        {
            var c = Connection.Create(new ConnectionOptions { Kind = ConnectionKind.HyperStatic, Streams = n }, d, k, new TestBranch(d));
            c.to(ScalarType.Float64);
            using (no_grad())
            {
                var alpha = Reference.Parameter(c, "static_alpha");                 // [n, n + 1] = [Am | Ar]
                alpha[.., 1..] = tensor(ar[k], [n, n], ScalarType.Float64);
            }
            connections.Add(c);
        }
        manual_seed(70);
        var states = new List<Tensor> { randn([1, 5, n, d], ScalarType.Float64) };
        foreach (var c in connections) states.Add(c.call(states[^1]));
        var profile = StabilityProbe.Measure(connections, states);

        static double[,] Res(double[] a) => new double[,] { { a[0], a[2] }, { a[1], a[3] } };   // Arᵀ
        static double[,] Mul(double[,] x, double[,] y)
        {
            var r = new double[2, 2];
            for (var i = 0; i < 2; i++) for (var j = 0; j < 2; j++) for (var k = 0; k < 2; k++) r[i, j] += x[i, k] * y[k, j];
            return r;
        }
        static double Fwd(double[,] m) => Math.Max(Math.Abs(m[0, 0] + m[0, 1]), Math.Abs(m[1, 0] + m[1, 1]));
        static double Bwd(double[,] m) => Math.Max(Math.Abs(m[0, 0] + m[1, 0]), Math.Abs(m[0, 1] + m[1, 1]));
        static double MinCol(double[,] m) => Math.Min(m[0, 0] + m[1, 0], m[0, 1] + m[1, 1]);
        for (var k = 0; k < ar.Length; k++)
        {
            var composite = Res(ar[k]);
            for (var later = k + 1; later < ar.Length; later++) composite = Mul(Res(ar[later]), composite);
            var p = profile.Sublayers[k];
            Assert.Equal(Fwd(Res(ar[k])), p.ForwardGain, 1e-12);
            Assert.Equal(Bwd(Res(ar[k])), p.BackwardGain, 1e-12);
            Assert.Equal(Fwd(composite), p.CompositeForwardGain, 1e-12);
            Assert.Equal(Bwd(composite), p.CompositeBackwardGain, 1e-12);
            Assert.Equal(Fwd(composite), p.CompositeForwardGainOfMean, 1e-12);   // static: every token has the same matrix
            Assert.Equal(MinCol(composite), p.CompositeMinColumnSum, 1e-12);
            Assert.Null(p.Saturation);
        }
        Assert.Equal(profile.Sublayers.Max(s => s.CompositeForwardGain), profile.Summary().MaxCompositeForwardGain);
    }

    [Fact]
    public void Mhc_at_init_has_gain_one_and_no_saturation()
    {
        manual_seed(71);
        var d = ConnectionFixture.D;
        var connections = Enumerable.Range(0, 6).Select(k => ConnectionFixture.Create(ConnectionKind.Manifold, 4, k)).ToList();
        var states = new List<Tensor> { randn([1, 7, 4, d], ScalarType.Float64) };
        foreach (var c in connections) states.Add(c.call(states[^1]));
        var summary = StabilityProbe.Measure(connections, states).Summary();
        Assert.Equal(1.0, summary.MaxCompositeForwardGain, 1e-9);
        Assert.Equal(1.0, summary.MaxCompositeBackwardGain, 1e-3);
        Assert.Equal(0.1 / 3, summary.PreMin, 1e-6);
        Assert.Equal(0.9, summary.PreMax, 1e-6);
        Assert.Equal(0.0, summary.Saturation);
        Assert.InRange(summary.MeanStateCosine, -1, 1);
    }

    [Fact]
    public void Rejects_mismatched_state_counts()
    {
        using var c = ConnectionFixture.Create(ConnectionKind.Manifold, 4);
        using var x = ConnectionFixture.State(4);
        Assert.Contains("expected 2 stream states", Assert.Throws<ArgumentException>(() => StabilityProbe.Measure([c], [x])).Message, StringComparison.Ordinal);
    }
}
