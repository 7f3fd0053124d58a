using Mhc.Diagnostics;
using static TorchSharp.torch;

namespace Mhc.Tests;

public class GainTests
{
    [Fact]
    public void Gains_take_the_absolute_value_of_sums_not_of_entries()
    {
        // Row sums -1, 2 (∞-norm would be 5); column sums 3, -2 (1-norm would be 4).
        // Second matrix: row sums 4, -6; column sums -3, 1.
        using var m = tensor(new double[] { 2, -3, 1, 1, 1, 3, -4, -2 }, [2, 2, 2]);
        Assert.Equal([2.0, 6.0], Reference.Values(Gain.Forward(m)));
        Assert.Equal([3.0, 3.0], Reference.Values(Gain.Backward(m)));
        Assert.Equal([2L], Gain.Forward(m).shape);
    }

    [Fact]
    public void Composite_multiplies_from_the_last_layer_down()
    {
        var a = new double[] { 1, 2, 0, 1 };
        var b = new double[] { 0, 1, 1, 0 };
        var c = new double[] { 2, 0, 1, 3 };
        using var ta = tensor(a, [2, 2]);
        using var tb = tensor(b, [2, 2]);
        using var tc = tensor(c, [2, 2]);
        var composite = Gain.Composite([ta, tb, tc]);
        static double[] Mul(double[] x, double[] y) =>
            [x[0] * y[0] + x[1] * y[2], x[0] * y[1] + x[1] * y[3], x[2] * y[0] + x[3] * y[2], x[2] * y[1] + x[3] * y[3]];
        Assert.Equal(Mul(Mul(c, b), a), Reference.Values(composite[0]));
        Assert.Equal(Mul(c, b), Reference.Values(composite[1]));
        Assert.Equal(c, Reference.Values(composite[2]));
        foreach (var t in composite) t.Dispose();
    }

    [Fact]
    public void Composite_of_doubly_stochastic_matrices_has_gain_one()
    {
        manual_seed(41);
        var layers = Enumerable.Range(0, 30).Select(_ => Sinkhorn.Project(randn([5, 4, 4], ScalarType.Float64), 200)).ToList();
        var composite = Gain.Composite(layers);
        foreach (var m in composite)
        {
            Assert.All(Reference.Values(Gain.Forward(m)), g => Assert.Equal(1.0, g, 1e-9));
            Assert.All(Reference.Values(Gain.Backward(m)), g => Assert.Equal(1.0, g, 1e-6));
        }
        // A signed, unconstrained matrix compounds instead.
        using var hc = tensor(new double[] { 1.2, 0.1, -0.1, 1.1 }, [2, 2]);
        var grown = Gain.Composite(Enumerable.Repeat(hc, 30).ToList());
        Assert.True(Reference.Values(Gain.Forward(grown[0])).Single() > 100);
    }

    [Fact]
    public void Rejects_non_square_input()
    {
        using var m = zeros(3, 2);
        Assert.Contains("[3, 2]", Assert.Throws<ArgumentException>(() => Gain.Forward(m)).Message, StringComparison.Ordinal);
    }
}
