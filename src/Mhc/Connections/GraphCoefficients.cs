using Mhc.Kernels;
using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// Fused-path coefficients of any connection, computed by its ordinary (autograd) coefficient code on a
/// leaf copy of the state; the backward runs that small graph. Used for HC and mHC's variants, whose coefficient math is cheap.
/// </summary>
sealed class GraphCoefficients : FusedCoefficients
{
    readonly Tensor? leaf;
    readonly Mixing? graph;

    GraphCoefficients(Tensor pre, Tensor post, Tensor res, Tensor? leaf, Mixing? graph) : base(pre, post, res)
    {
        this.leaf = leaf;
        this.graph = graph;
    }

    /// <summary>
    /// Coefficients of <paramref name="x"/>; with <paramref name="withGraph"/> they can be differentiated later.
    /// <paramref name="write"/>, if given, makes x first (this code reads it whole).
    /// </summary>
    public static GraphCoefficients Of(Func<Tensor, Mixing> compute, Tensor x, bool withGraph, StreamMixing.WritePass? write = null)
    {
        write?.Run();
        if (!withGraph)
        {
            using var _ = no_grad();
            using var m = compute(x);
            return new GraphCoefficients(Values(m.Pre, x), Values(m.Post, x), Values(m.Res, x), null, null);
        }
        var leaf = x.detach().requires_grad_(true);
        Mixing graph;
        using (enable_grad()) graph = compute(leaf);
        return new GraphCoefficients(Values(graph.Pre, x), Values(graph.Post, x), Values(graph.Res, x), leaf, graph);
    }

    static Tensor Values(Tensor t, Tensor x) => t.detach().to(x.dtype).contiguous();

    public override (Tensor Gx, IReadOnlyList<(Tensor Parameter, Tensor Gradient)> Parameters) Backward(Tensor x, Tensor g, Tensor gu, Tensor gPost, bool overwriteG,
        StreamMixing.WriteBackwardPass? previous = null)
    {
        if (graph is null || leaf is null) throw new InvalidOperationException("these coefficients were computed without a graph.");
        var (gx, gPre, gRes) = StreamMixing.ReadBackward(x, Pre, Res, gu, g, overwriteG);
        // Only the maps that were learned have a graph: the mHC ablations fix H_pre and H_post as constants.
        var learned = new[] { (graph.Pre, gPre), (graph.Post, gPost), (graph.Res, gRes) }.Where(p => p.Item1.requires_grad).ToList();
        if (learned.Count > 0)
            using (enable_grad())
                autograd.backward(learned.Select(p => p.Item1).ToList(), learned.Select(p => p.Item2.to(p.Item1.dtype)).ToList());
        if (leaf.grad is { } lg) gx.add_(lg);
        previous?.Run(gx);   // after the graph's share: only then is gx final
        return (gx, []);
    }

    protected override IEnumerable<Tensor> Owned() =>
        base.Owned().Concat(graph is null ? [] : [leaf!, graph.Pre, graph.Post, graph.Res]);
}
