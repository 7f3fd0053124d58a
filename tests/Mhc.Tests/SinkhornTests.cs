using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

public class SinkhornTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(7)]
    public void Matches_a_loop_implementation_in_float64(int n)
    {
        manual_seed(1);
        using var logits = randn([3, 2, n, n], ScalarType.Float64) * 3;
        using var projected = Sinkhorn.Project(logits, 20);
        var l = Reference.Values(logits);
        var p = Reference.Values(projected);
        for (var k = 0; k < 6; k++)
        {
            var expected = Reference.Sinkhorn(Reference.Matrix(l, k, n), 20);
            for (var i = 0; i < n; i++)
                for (var j = 0; j < n; j++)
                    Assert.Equal(expected[i, j], p[k * n * n + i * n + j], 1e-8);
        }
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float64)]
    public void Rows_sum_to_one_and_entries_are_non_negative(ScalarType dtype)
    {
        manual_seed(2);
        using var logits = (randn([64, 4, 4]) * 2).to(dtype);
        using var projected = Sinkhorn.Project(logits);
        Assert.Equal(dtype, projected.dtype);
        Assert.Equal(logits.shape, projected.shape);
        var p = Reference.Values(projected);
        for (var k = 0; k < 64; k++)
        {
            var m = Reference.Matrix(p, k, 4);
            for (var i = 0; i < 4; i++)
            {
                var rowSum = 0.0;
                var colSum = 0.0;
                for (var j = 0; j < 4; j++)
                {
                    Assert.True(m[i, j] >= 0);
                    rowSum += m[i, j];
                    colSum += m[j, i];
                }
                Assert.Equal(1.0, rowSum, 1e-6);
                Assert.Equal(1.0, colSum, 0.05);   // the truncation error of 20 iterations lands here
            }
        }
    }

    [Fact]
    public void Gradient_equals_central_finite_differences()
    {
        manual_seed(3);
        const int n = 3;
        using var logits = randn([n, n], ScalarType.Float64).requires_grad_(true);
        using var weights = randn([n, n], ScalarType.Float64);   // loss = Σ w ⊙ P mixes every output
        using (var loss = (Sinkhorn.Project(logits) * weights).sum())
            loss.backward();
        var analytic = Reference.Values(logits.grad!);

        var l = Reference.Values(logits);
        var w = Reference.Values(weights);
        double Loss(double[] values)
        {
            var m = new double[n, n];
            for (var i = 0; i < n * n; i++) m[i / n, i % n] = values[i];
            var p = Reference.Sinkhorn(m, 20);
            var s = 0.0;
            for (var i = 0; i < n * n; i++) s += w[i] * p[i / n, i % n];
            return s;
        }
        const double h = 1e-6;
        for (var i = 0; i < n * n; i++)
        {
            var plus = (double[])l.Clone();
            var minus = (double[])l.Clone();
            plus[i] += h;
            minus[i] -= h;
            var numeric = (Loss(plus) - Loss(minus)) / (2 * h);
            Assert.Equal(numeric, analytic[i], 1e-7);
        }
        Assert.Contains(analytic, g => Math.Abs(g) > 1e-3);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.BFloat16)]
    public void Stays_finite_and_row_stochastic_for_huge_logits(ScalarType dtype)
    {
        manual_seed(4);
        for (var n = 1; n <= 16; n++)
        {
            // ±1e4: a naive exp overflows, a shifted one underflows whole rows to 0/0.
            using var logits = ((rand([8, n, n]) * 2 - 1) * 1e4).to(dtype).requires_grad_(true);
            using var projected = Sinkhorn.Project(logits);
            using (var loss = projected.to(ScalarType.Float32).square().sum())
                loss.backward();
            var p = Reference.Values(projected);
            Assert.All(p, v => Assert.True(double.IsFinite(v) && v >= 0, $"n = {n}: entry {v}"));
            Assert.All(Reference.Values(logits.grad!), g => Assert.True(double.IsFinite(g), $"n = {n}: gradient {g}"));
            var rowTolerance = dtype == ScalarType.BFloat16 ? 2e-2 : 1e-5;
            for (var k = 0; k < 8; k++)
                for (var i = 0; i < n; i++)
                {
                    var rowSum = 0.0;
                    for (var j = 0; j < n; j++) rowSum += p[k * n * n + i * n + j];
                    Assert.Equal(1.0, rowSum, rowTolerance);
                }
        }
    }

    [Fact]
    public void Log_domain_gives_the_same_projection()
    {
        manual_seed(5);
        using var logits = randn([16, 5, 5], ScalarType.Float64) * 4;
        using var exp = Sinkhorn.Project(logits, new SinkhornOptions { Iterations = 20 });
        using var log = Sinkhorn.Project(logits, new SinkhornOptions { Iterations = 20, LogDomain = true });
        var a = Reference.Values(exp);
        var b = Reference.Values(log);
        for (var i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i], 1e-12);
    }

    [Fact]
    public void Early_stop_meets_the_tolerance_with_fewer_iterations()
    {
        manual_seed(6);
        using var logits = randn([32, 4, 4], ScalarType.Float64);
        const double tolerance = 1e-4;
        using var early = Sinkhorn.Project(logits, new SinkhornOptions { Iterations = 1000, Tolerance = tolerance });
        var columnError = Reference.Values((early.sum(-2) - 1).abs().max()).Single();
        Assert.True(columnError <= tolerance, $"column error {columnError}");
        // It stopped early: a full 1000 iterations would be far tighter than the tolerance.
        using var full = Sinkhorn.Project(logits, 1000);
        var fullError = Reference.Values((full.sum(-2) - 1).abs().max()).Single();
        Assert.True(fullError < tolerance / 100 && columnError > fullError, $"early {columnError}, full {fullError}");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    public void Rejects_non_positive_iterations(int iterations)
    {
        using var logits = zeros(4, 4);
        var e = Assert.Throws<ArgumentException>(() => Sinkhorn.Project(logits, iterations));
        Assert.Contains("Iterations", e.Message, StringComparison.Ordinal);
        Assert.Contains(iterations.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rejects_non_square_and_rank_one_input()
    {
        using var rect = zeros(2, 3, 4);
        Assert.Contains("[2, 3, 4]", Assert.Throws<ArgumentException>(() => Sinkhorn.Project(rect)).Message, StringComparison.Ordinal);
        using var vector = zeros(4);
        Assert.Contains("[..., n, n]", Assert.Throws<ArgumentException>(() => Sinkhorn.Project(vector)).Message, StringComparison.Ordinal);
        using var ints = zeros([3, 3], ScalarType.Int32);
        Assert.Contains("floating-point", Assert.Throws<ArgumentException>(() => Sinkhorn.Project(ints)).Message, StringComparison.Ordinal);
        Assert.Contains("Tolerance", Assert.Throws<ArgumentException>(() => Sinkhorn.Project(zeros(3, 3), new SinkhornOptions { Tolerance = -1 })).Message, StringComparison.Ordinal);
    }
}
