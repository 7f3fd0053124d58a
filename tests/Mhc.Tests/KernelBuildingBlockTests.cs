using System.Numerics;
using System.Reflection;
using System.Runtime.Intrinsics;
using Mhc.Kernels;

namespace Mhc.Tests;

/// <summary>The pieces the fused kernels are built from, against plain loops.</summary>
public class KernelBuildingBlockTests
{
    [Theory]
    [InlineData(0, 7, true)]
    [InlineData(1, 1, false)]
    [InlineData(3, 19, true)]      // one group of four with a padded term; a scalar tail
    [InlineData(4, 64, false)]
    [InlineData(5, 64, true)]      // a second group that starts from the first group's sums
    [InlineData(9, 13, false)]
    public void Weighted_rows_equal_a_loop(int rows, int d, bool withS)
    {
        var random = new Random(rows * 100 + d);
        double[] Values(int count) => Enumerable.Range(0, count).Select(_ => random.NextDouble() * 4 - 2).ToArray();
        var (matrix, w, s, a) = (Values(rows * d), Values(rows), withS ? Values(d) : [], random.NextDouble());
        var dst = Enumerable.Repeat(double.NaN, d).ToArray();   // what was there before must not matter

        VectorOps.WeightedRows<double>(dst, s, a, matrix, w);

        for (var k = 0; k < d; k++)
        {
            var expected = withS ? a * s[k] : 0.0;
            for (var j = 0; j < rows; j++) expected += w[j] * matrix[j * d + k];
            Assert.True(Math.Abs(expected - dst[k]) <= 1e-12 * (1 + Math.Abs(expected)), $"dst[{k}]: expected {expected}, got {dst[k]}");
        }
    }

    [Theory]
    [InlineData(16, 24, 2048, false)]  // the projection's share in the mHC backward: a block of tokens × φᵀ
    [InlineData(13, 6, 100, true)]     // one whole 8-row tile, then a last one that repeats a row
    [InlineData(24, 16, 256, true)]    // φ's gradient: g_rawᵀ × tokens (a read down columns)
    [InlineData(7, 3, 45, false)]      // a last tile that repeats a row; tails of one vector and of single values
    [InlineData(6, 128, 512, true)]    // HC's parameter-gradient sums: two rows past a tile
    [InlineData(2, 5, 9, true)]        // one tile, rows repeated, shorter than two vectors
    [InlineData(5, 1, 3, false)]
    [InlineData(16, 512, 24, false)]   // mHC's projection at n = 4: three 256-bit vectors of floats, unpadded
    [InlineData(7, 9, 12, true)]       // three 256-bit vectors of doubles; a last four-row tile that repeats a row
    [AndInVector512]
    public void Add_product_equals_a_loop(int rows, int depth, int length, bool aByColumns, VectorWidth width = VectorWidth.Vector)
    {
        // Strides larger than the rows, so that reading or writing past a row's end would change the result.
        var (cStride, bStride) = (length + 3, length + 5);
        var (aRow, aColumn) = aByColumns ? (1, rows + 2) : (depth + 2, 1);
        var random = new Random(rows * 1000 + depth * 10 + length);
        double[] Values(int count) => Enumerable.Range(0, count).Select(_ => random.NextDouble() * 4 - 2).ToArray();
        var (a, b, c0) = (Values(rows * aRow + depth * aColumn), Values(depth * bStride), Values(rows * cStride));
        var expected = (double[])c0.Clone();
        for (var r = 0; r < rows; r++)
            for (var k = 0; k < length; k++)
                for (var j = 0; j < depth; j++) expected[r * cStride + k] += a[r * aRow + j * aColumn] * b[j * bStride + k];

        var run = In<double>(width);
        var c = (double[])c0.Clone();
        run.AddProduct(c, cStride, rows, a, aRow, aColumn, b, bStride, depth, length);
        for (var i = 0; i < c.Length; i++)
            Assert.True(Math.Abs(expected[i] - c[i]) <= 1e-12 * (1 + Math.Abs(expected[i])), $"{run.Name}: c[{i}] expected {expected[i]}, got {c[i]}");
        var single = c0.Select(v => (float)v).ToArray();
        VectorOps.AddProduct<float>(single, cStride, rows, a.Select(v => (float)v).ToArray(), aRow, aColumn, b.Select(v => (float)v).ToArray(), bStride, depth, length);
        for (var i = 0; i < single.Length; i++)
            Assert.True(Math.Abs(expected[i] - single[i]) <= 1e-4 * (1 + Math.Abs(expected[i])), $"float: c[{i}] expected {expected[i]}, got {single[i]}");
    }

    [Theory]
    [InlineData(4, 4, 512)]    // H_res's gradient <g_i, x_j> at n = 4
    [InlineData(9, 6, 512)]    // two columns and a row past whole tiles
    [InlineData(6, 5, 37)]     // last tiles that repeat a row and a column; tails of one vector and of single values
    [InlineData(3, 3, 8)]      // one tile, every row and column repeated
    [InlineData(4, 4, 5)]      // a tile shorter than a vector
    [AndInVector512]
    public void Cross_dots_equal_a_loop(int aCount, int xCount, int length, VectorWidth width = VectorWidth.Vector)
    {
        var (aStride, xStride) = (length + 2, length + 7);
        var random = new Random(aCount * 100 + xCount * 10 + length);
        double[] Values(int count) => Enumerable.Range(0, count).Select(_ => random.NextDouble() * 4 - 2).ToArray();
        var (a, x) = (Values(aCount * aStride), Values(xCount * xStride));
        var run = In<double>(width);
        var result = Enumerable.Repeat(double.NaN, aCount * xCount).ToArray();
        run.CrossDots(a, aStride, aCount, x, xStride, xCount, length, result);
        for (var r = 0; r < aCount; r++)
            for (var j = 0; j < xCount; j++)
            {
                var expected = 0.0;
                for (var k = 0; k < length; k++) expected += a[r * aStride + k] * x[j * xStride + k];
                Assert.True(Math.Abs(expected - result[r * xCount + j]) <= 1e-12 * (1 + Math.Abs(expected)),
                    $"{run.Name}: <a_{r}, x_{j}> expected {expected}, got {result[r * xCount + j]}");
            }
    }

    [Theory]
    [InlineData(37, 4, 3.0)]      // groups of 4 and 8 lanes (doubles) with a partly padded last group
    [InlineData(5, 3, 1.0)]       // one group, mostly padding
    [InlineData(40, 4, 400.0)]    // spreads past float64's exp range: groups iterated in the log domain
    [AndInVector512]
    public void Sinkhorn_kernel_equals_the_reference_in_each_width(int count, int n, double scale, VectorWidth width = VectorWidth.Vector)
    {
        const int iterations = 20;
        TorchSharp.torch.manual_seed(count * 10 + n);
        using var logits = (TorchSharp.torch.randn([count, n, n], TorchSharp.torch.ScalarType.Float64) * scale).requires_grad_(true);
        using var weights = TorchSharp.torch.randn([count, n, n], TorchSharp.torch.ScalarType.Float64);
        using var expected = Sinkhorn.Project(logits, iterations);
        using (var loss = (expected * weights).sum()) loss.backward();
        var (values, gradient) = (expected.detach().data<double>().ToArray(), logits.grad!.data<double>().ToArray());
        var (input, gOut) = (logits.detach().data<double>().ToArray(), weights.data<double>().ToArray());
        var run = In<double>(width);
        var (output, gIn) = (new double[count * n * n], new double[count * n * n]);
        run.SinkhornForward(input, output, count, n, iterations);
        run.SinkhornBackward(input, gOut, gIn, count, n, iterations);
        for (var i = 0; i < output.Length; i++)
        {
            Assert.True(Math.Abs(values[i] - output[i]) <= 1e-10, $"{run.Name}: output[{i}] expected {values[i]}, got {output[i]}");
            Assert.True(Math.Abs(gradient[i] - gIn[i]) <= 1e-8 * (1 + Math.Abs(gradient[i])), $"{run.Name}: gradient[{i}] expected {gradient[i]}, got {gIn[i]}");
        }
    }

    /// <summary>
    /// The compute-bound kernels in one of the vector widths they run in: Vector&lt;T&gt; everywhere, 512 bits
    /// where the machine has them (the <see cref="AndInVector512Attribute"/> rows, skipped elsewhere).
    /// </summary>
    static Width<T> In<T>(VectorWidth width) where T : unmanaged, IFloatingPointIeee754<T> => width switch
    {
        VectorWidth.Vector => new Width<T>("Vector<T>", VectorOps.AddProduct<T, Vector<T>, LanesOfVector<T>>, VectorOps.CrossDots<T, Vector<T>, LanesOfVector<T>>,
            SinkhornKernel.Forward<T, Vector<T>, LanesOfVector<T>>, SinkhornKernel.Backward<T, Vector<T>, LanesOfVector<T>>),
        VectorWidth.Vector512 => new Width<T>("Vector512<T>", VectorOps.AddProduct<T, Vector512<T>, Lanes512<T>>, VectorOps.CrossDots<T, Vector512<T>, Lanes512<T>>,
            SinkhornKernel.Forward<T, Vector512<T>, Lanes512<T>>, SinkhornKernel.Backward<T, Vector512<T>, Lanes512<T>>),
        _ => throw new ArgumentOutOfRangeException(nameof(width), width, null),
    };

    delegate void AddProductRun<T>(Span<T> c, int cStride, int rows, ReadOnlySpan<T> a, int aRow, int aColumn, ReadOnlySpan<T> b, int bStride, int depth, int length);

    delegate void CrossDotsRun<T>(ReadOnlySpan<T> a, int aStride, int aCount, ReadOnlySpan<T> x, int xStride, int xCount, int length, Span<T> result);

    delegate void SinkhornForwardRun<T>(ReadOnlySpan<T> logits, Span<T> output, int count, int n, int iterations);

    delegate void SinkhornBackwardRun<T>(ReadOnlySpan<T> logits, ReadOnlySpan<T> gradOutput, Span<T> gradLogits, int count, int n, int iterations);

    sealed record Width<T>(string Name, AddProductRun<T> AddProduct, CrossDotsRun<T> CrossDots, SinkhornForwardRun<T> SinkhornForward, SinkhornBackwardRun<T> SinkhornBackward);

    [FactWhen(Requirement.Linux)]
    public void Open_mp_team_runs_every_item_once_and_passes_errors_back()
    {
        // TorchSharp-cpu ships libtorch with GNU OpenMP on Linux (only): the kernels must find it there.
        Assert.True(OpenMpTeam.Available, "GNU OpenMP (libgomp from TorchSharp-cpu) was not found");
        var runs = new int[1000];
        var threads = new HashSet<int>();
        OpenMpTeam.For(runs.Length, 2, i =>
        {
            Interlocked.Increment(ref runs[i]);
            lock (threads) threads.Add(Environment.CurrentManagedThreadId);
            Thread.SpinWait(2000);   // long enough that the second thread takes items too
        });
        Assert.All(runs, r => Assert.Equal(1, r));
        Assert.Equal(2, threads.Count);

        var error = Assert.Throws<InvalidOperationException>(() => OpenMpTeam.For(100, 2, i =>
        {
            if (i == 37) throw new InvalidOperationException("item 37");
        }));
        Assert.Equal("item 37", error.Message);
        var after = 0;
        OpenMpTeam.For(10, 2, _ => Interlocked.Increment(ref after));   // the team is usable after an error
        Assert.Equal(10, after);
    }
}

/// <summary>The vector width a kernel test runs in.</summary>
public enum VectorWidth
{
    /// <summary><c>Vector&lt;T&gt;</c>: 128 or 256 bits, on every machine.</summary>
    Vector,

    /// <summary><c>Vector512&lt;T&gt;</c>: on machines with AVX-512.</summary>
    Vector512,
}

/// <summary>
/// The test method's <see cref="InlineDataAttribute"/> rows once more, with <see cref="VectorWidth.Vector512"/>
/// as the last argument; skipped, with the reason, on a machine without 512-bit vectors.
/// </summary>
sealed class AndInVector512Attribute : Xunit.Sdk.DataAttribute
{
    public AndInVector512Attribute() => Skip = Conditions.Unmet(Requirement.Vector512);

    public override IEnumerable<object[]> GetData(MethodInfo testMethod) =>
        testMethod.GetCustomAttributes<InlineDataAttribute>().SelectMany(rows => rows.GetData(testMethod)).Select(row => (object[])[.. row, VectorWidth.Vector512]);
}
