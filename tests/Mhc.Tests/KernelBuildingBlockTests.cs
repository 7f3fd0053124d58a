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

    [Fact]
    public void Open_mp_team_runs_every_item_once_and_passes_errors_back()
    {
        // TorchSharp-cpu ships libtorch with GNU OpenMP on Linux: the kernels must find it there.
        Assert.Equal(OperatingSystem.IsLinux(), OpenMpTeam.Available);
        if (!OpenMpTeam.Available) return;
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
