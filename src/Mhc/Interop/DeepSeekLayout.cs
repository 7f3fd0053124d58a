using Mhc.Connections;
using static TorchSharp.torch;

namespace Mhc.Interop;

/// <summary>
/// One mHC connection as DeepSeek-V4 stores it (spec §10): <c>fn</c> <c>[n² + 2n, n·d]</c> = φᵀ, <c>base</c> <c>[n² + 2n]</c>
/// the biases, <c>scale</c> <c>[3]</c> = (α_pre, α_post, α_res). Rows 0…n−1 are pre, n…2n−1 post, then the residual mix
/// row-major as comb[src][dst] = H_res[dst][src]: our row i is an output stream, theirs an input stream. Columns of
/// <c>fn</c> follow the state flattened stream-major (stream·d + channel), as ours. Use it to move weights between a
/// <see cref="ManifoldHyperConnection"/> of your own model and DeepSeek's checkpoints.
/// </summary>
public static class DeepSeekLayout
{
    /// <summary><c>fn</c>, <c>base</c> and <c>scale</c> of <paramref name="connection"/> (new CPU tensors, float32 or float64).</summary>
    /// <param name="connection">An mHC connection.</param>
    public static (Tensor Fn, Tensor Base, Tensor Scale) Export(ManifoldHyperConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return (Fn(connection), Base(connection), Scale(connection));
    }

    /// <summary>Sets <paramref name="connection"/>'s parameters from DeepSeek-V4's tensors; shapes are checked first.</summary>
    /// <param name="connection">An mHC connection with n streams and width d.</param>
    /// <param name="fn"><c>[n² + 2n, n·d]</c>.</param>
    /// <param name="base"><c>[n² + 2n]</c>.</param>
    /// <param name="scale"><c>[3]</c>.</param>
    public static void Import(ManifoldHyperConnection connection, Tensor fn, Tensor @base, Tensor scale)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(fn);
        ArgumentNullException.ThrowIfNull(@base);
        ArgumentNullException.ThrowIfNull(scale);
        var width = Width(connection.Streams);
        void Require(Tensor t, string name, params long[] shape)
        {
            if (!t.shape.SequenceEqual(shape))
                throw new ArgumentException($"DeepSeek-V4 '{name}' has shape {TensorData.Shape(t.shape)}; this connection (n = {connection.Streams}, d = {connection.DModel}) needs {TensorData.Shape(shape)}.", name);
        }
        Require(fn, "fn", width, connection.Streams * connection.DModel);
        Require(@base, "base", width);
        Require(scale, "scale", 3);
        SetFn(connection, fn);
        SetBase(connection, @base);
        SetScale(connection, scale);
    }

    /// <summary>Rows of <c>fn</c> (and entries of <c>base</c>) for n streams: n² + 2n.</summary>
    internal static long Width(int n) => n * n + 2 * n;

    // Row r of fn / entry r of base comes from φ's column / our bias at Order[r]. It swaps src and dst, so it is its own inverse.
    static Tensor Order(int n) => tensor(Enumerable.Range(0, n * n + 2 * n)
        .Select(r => (long)(r < 2 * n ? r : 2 * n + (r - 2 * n) % n * n + (r - 2 * n) / n)).ToArray(), ScalarType.Int64);

    internal static Tensor Fn(ManifoldHyperConnection connection)
    {
        using var order = Order(connection.Streams);
        using var phiT = connection.Kernel.Phi.detach().t();
        using var rows = phiT.index_select(0, order);
        return LayoutMap.Copy(rows);
    }

    internal static void SetFn(ManifoldHyperConnection connection, Tensor fn)
    {
        using var order = Order(connection.Streams);
        using var rows = fn.index_select(0, order);
        using var phi = rows.t();
        LayoutMap.Assign(connection.Kernel.Phi, phi);
    }

    internal static Tensor Base(ManifoldHyperConnection connection)
    {
        var p = connection.Kernel;
        using var order = Order(connection.Streams);
        using var flat = p.BiasRes.detach().flatten();
        using var all = cat([p.BiasPre.detach(), p.BiasPost.detach(), flat]);
        using var ordered = all.index_select(0, order);
        return LayoutMap.Copy(ordered);
    }

    internal static void SetBase(ManifoldHyperConnection connection, Tensor value)
    {
        var (p, n) = (connection.Kernel, connection.Streams);
        using var order = Order(n);
        using var ours = value.index_select(0, order);
        LayoutMap.Assign(p.BiasPre, ours.narrow(0, 0, n));
        LayoutMap.Assign(p.BiasPost, ours.narrow(0, n, n));
        LayoutMap.Assign(p.BiasRes, ours.narrow(0, 2 * n, n * n).view(n, n));
    }

    internal static Tensor Scale(ManifoldHyperConnection connection)
    {
        var p = connection.Kernel;
        using var all = stack([p.AlphaPre.detach(), p.AlphaPost.detach(), p.AlphaRes.detach()]);
        return LayoutMap.Copy(all);
    }

    internal static void SetScale(ManifoldHyperConnection connection, Tensor value)
    {
        var p = connection.Kernel;
        using var pre = value[0];
        using var post = value[1];
        using var res = value[2];
        LayoutMap.Assign(p.AlphaPre, pre);
        LayoutMap.Assign(p.AlphaPost, post);
        LayoutMap.Assign(p.AlphaRes, res);
    }
}
