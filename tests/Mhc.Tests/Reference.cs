using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>
/// Independent computations for the tests: plain loops over double arrays, never the tensor code
/// under test, plus small helpers to move data between tensors and arrays.
/// </summary>
static class Reference
{
    public static double[] Values(Tensor t)
    {
        using var d = t.detach().to(ScalarType.Float64).cpu().contiguous();
        return d.data<double>().ToArray();
    }

    public static double Sigmoid(double z) => 1 / (1 + Math.Exp(-z));

    /// <summary>Sinkhorn-Knopp on one n×n matrix, spec §6: exp(L − max), then columns, then rows.</summary>
    public static double[,] Sinkhorn(double[,] logits, int iterations)
    {
        var n = logits.GetLength(0);
        var max = double.NegativeInfinity;
        foreach (var v in logits) max = Math.Max(max, v);
        var m = new double[n, n];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                m[i, j] = Math.Exp(logits[i, j] - max);
        for (var t = 0; t < iterations; t++)
        {
            for (var j = 0; j < n; j++)
            {
                var s = 0.0;
                for (var i = 0; i < n; i++) s += m[i, j];
                for (var i = 0; i < n; i++) m[i, j] /= s;
            }
            for (var i = 0; i < n; i++)
            {
                var s = 0.0;
                for (var j = 0; j < n; j++) s += m[i, j];
                for (var j = 0; j < n; j++) m[i, j] /= s;
            }
        }
        return m;
    }

    /// <summary>Matrix <c>[n, n]</c> number <paramref name="index"/> of a flat row-major batch.</summary>
    public static double[,] Matrix(double[] flat, int index, int n)
    {
        var m = new double[n, n];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                m[i, j] = flat[index * n * n + i * n + j];
        return m;
    }

    /// <summary>Randomises every parameter of a module (normal, given std) so no coefficient is at its special init value.</summary>
    public static void Randomize(nn.Module module, double std)
    {
        using var _ = no_grad();
        foreach (var (_, p) in module.named_parameters())
            p.normal_(0, std);
    }

    public static Tensor Parameter(nn.Module module, string name) =>
        module.named_parameters().Single(p => p.name == name).parameter;
}
