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
        if (connections.Count > 0 && is_grad_enabled() && connections.All(c => c.CanFuse(x)))
        {
            connections[0].CheckState(x);
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
        if (connections.Count > 1 && !is_grad_enabled() && connections.All(c => c.CanFuse(x)))
        {
            connections[0].CheckState(x);
            return FusedInference(connections, x);
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
    /// The fused forward without a graph (evaluation, generation): as the training chain, each connection's write is made
    /// inside the next one's coefficient pass, on the tokens that pass holds in cache, and nothing is kept for a backward.
    /// </summary>
    static Tensor FusedInference(IReadOnlyList<Connection> connections, Tensor x)
    {
        var state = x.contiguous();
        var coefficients = connections[0].FusedCoefficients(state, withGraph: false, withBranchInput: true);
        for (var k = 0; k < connections.Count; k++)
        {
            using var scope = NewDisposeScope();
            using var u = coefficients.TakeBranchInput(state);
            var y = connections[k].Branch.call(u).contiguous();
            var write = new StreamMixing.WritePass(state, coefficients.Res, coefficients.Post, y);
            var next = k + 1 < connections.Count ? connections[k + 1].FusedCoefficients(write.Output, withGraph: false, withBranchInput: true, write) : null;
            if (next is null) write.Run();
            coefficients.Dispose();
            if (!ReferenceEquals(state, x)) state.Dispose();
            state = write.Output.MoveToOuterDisposeScope();
            next?.Keep();
            if (next is not null) coefficients = next;
        }
        return ReferenceEquals(state, x) ? x.alias() : state;
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
