using Mhc.Kernels;
using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// Runs a model's connections in order on the stream state. On the fused path (every connection
/// <see cref="ConnectionOptions.Fused"/>, CPU float tensors, gradients wanted) they run as segments of one
/// autograd node each; with <see cref="ConnectionOptions.Recompute"/> a segment keeps only its input state
/// and the branch outputs and recomputes the rest in backward. Otherwise each connection runs on its own.
/// </summary>
public static class ConnectionChain
{
    /// <summary>The stream state after every connection: <c>[B, T, n, d]</c> → <c>[B, T, n, d]</c>.</summary>
    /// <param name="connections">Sub-layers in order, all with the same options.</param>
    /// <param name="x">Stream state entering the first.</param>
    public static Tensor Forward(IReadOnlyList<Connection> connections, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(connections);
        ArgumentNullException.ThrowIfNull(x);
        if (connections.Count > 0 && connections.All(c => c.CanFuse(x)))
        {
            connections[0].CheckState(x);
            if (!is_grad_enabled()) return FusedWithoutGraph(connections, x);
            var options = connections[0].Options;
            var length = options.Recompute ? RecomputeSegment(options.Streams, connections.Count) : connections.Count;
            var state = x;
            for (var first = 0; first < connections.Count; first += length)
            {
                var next = ConnectionChainFunction.Apply(state, connections.Skip(first).Take(length).ToList(), options.Recompute);
                if (!ReferenceEquals(state, x)) state.Dispose();
                state = next;
            }
            return state;
        }
        var current = x.alias();
        foreach (var connection in connections)
        {
            var next = connection.call(current);
            current.Dispose();
            current = next;
        }
        return current;
    }

    /// <summary>
    /// The fused forward without a graph (evaluation, generation): the training chain's passes (<see cref="ConnectionChainFunction.Walk"/>),
    /// keeping nothing for a backward.
    /// </summary>
    internal static Tensor FusedWithoutGraph(IReadOnlyList<Connection> connections, Tensor x)
    {
        var input = x.contiguous();
        return ConnectionChainFunction.Walk(input, connections, withGraph: false, (connection, u) => (connection.Branch.call(u), u),
            (state, coefficients, u, _) =>
            {
                coefficients.Dispose();
                u.Dispose();
                if (!ReferenceEquals(state, x)) state.Dispose();
            });
    }

    /// <summary>The state entering every connection, then the final state: <c>connections.Count + 1</c> tensors.</summary>
    /// <param name="connections">Sub-layers in order.</param>
    /// <param name="x">Stream state entering the first; becomes the first element.</param>
    public static IReadOnlyList<Tensor> States(IReadOnlyList<Connection> connections, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(connections);
        var states = new List<Tensor> { x };
        foreach (var connection in connections) states.Add(connection.call(states[^1]));
        return states;
    }

    /// <summary>
    /// Sub-layers per recomputation segment, L_r = round(√(n·L/(n + 2))) (mHC paper §4.3): it balances the
    /// states kept at segment boundaries against those rebuilt inside a segment.
    /// </summary>
    /// <param name="streams">n.</param>
    /// <param name="sublayers">L.</param>
    public static int RecomputeSegment(int streams, int sublayers) =>
        Math.Clamp((int)Math.Round(Math.Sqrt(streams * (double)sublayers / (streams + 2))), 1, Math.Max(1, sublayers));
}
