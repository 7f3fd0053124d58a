using Mhc.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// A run of consecutive multi-stream connections as one autograd node. Forward, per connection:
/// coefficients and the branch input, the branch (recorded with its own autograd graph from a leaf input),
/// <see cref="StreamMixing.Write"/>. Backward, in reverse: the write's coefficient gradients, the branch's
/// backward (re-entrant, so branch parameters accumulate their gradients as usual), then the coefficients'
/// backward writes the whole state gradient in one pass, instead of autograd allocating a buffer per use
/// of the state and summing them. Between connections the passes meet: each write is made inside the next
/// connection's coefficient pass, and each write's backward runs inside the next connection's coefficient
/// backward, on the ranges of tokens those passes hold in cache.
/// With recomputation only the segment's input state and the branch outputs are kept; the states inside
/// the segment and every coefficient are recomputed in backward (mHC paper §4.3), the branches are not.
/// </summary>
sealed class ConnectionChainFunction : autograd.SingleTensorFunction<ConnectionChainFunction>
{
    public override string Name => "MhcConnectionChain";

    /// <summary>Runs <paramref name="connections"/> on <paramref name="x"/>; <paramref name="recompute"/> trades time for memory.</summary>
    public static Tensor Apply(Tensor x, IReadOnlyList<Connection> connections, bool recompute)
    {
        // Every parameter of the segment is an input, so the node runs whenever any of them trains; only the
        // coefficient parameters get their gradients through it, branch parameters get theirs re-entrantly.
        var parameters = connections.SelectMany(c => c.parameters()).Cast<object>();
        return apply([x, new Segment(connections, recompute), .. parameters]);
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var segment = (Segment)vars[1];
        var state = ((Tensor)vars[0]).contiguous();
        segment.Input = Keep(state.alias());
        state = Walk(state, segment.Connections, withGraph: !segment.Recompute, RunBranch, (x, coefficients, leaf, y) =>
        {
            if (segment.Recompute)
            {
                // Only the segment's input (kept above) survives; this state and the coefficients are rebuilt in backward.
                coefficients.Dispose();
                x.Dispose();
                segment.Steps.Add(new Step(null, null, Keep(leaf), Keep(y)));
            }
            else segment.Steps.Add(new Step(Keep(x), coefficients.Keep(), Keep(leaf), Keep(y)));
        });
        ctx.save_data("segment", segment);
        return state;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
    {
        var segment = (Segment)ctx.get_data("segment");
        try
        {
            using var scope = NewDisposeScope();
            if (segment.Recompute) Recompute(segment);
            var g = grad.contiguous();
            var parameterGrads = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
            var last = segment.Steps[^1];
            var (gpost, gy) = StreamMixing.WriteBackward(last.Coefficients!.Post, last.Y.detach(), g);
            for (var k = segment.Steps.Count - 1; k >= 0; k--)
            {
                var (x, coefficients, leaf, y) = segment.Steps[k];
                var connection = segment.Connections[k];
                Tensor gx;
                StreamMixing.WriteBackwardPass? previous = null;
                using (NewDisposeScope())
                {
                    using (enable_grad()) y.backward([gy]);
                    // The previous sub-layer's write backward runs on this state gradient as it is made, not as one more pass.
                    if (k > 0) previous = new StreamMixing.WriteBackwardPass(segment.Steps[k - 1].Coefficients!.Post, segment.Steps[k - 1].Y.detach());
                    // The gradient autograd handed in is not ours to write over; the ones this loop made are.
                    var (stateGrad, grads) = coefficients!.Backward(x!, g, leaf.grad!.contiguous(), gpost, overwriteG: k < segment.Steps.Count - 1, previous);
                    foreach (var (parameter, gradient) in grads) parameterGrads[parameter] = gradient.MoveToOuterDisposeScope();
                    gx = stateGrad.MoveToOuterDisposeScope();
                    previous?.Gpost.MoveToOuterDisposeScope();
                    previous?.Gy.MoveToOuterDisposeScope();
                }
                // Free this sub-layer's tensors now rather than at the segment's end: backward's peak memory
                // would otherwise hold every sub-layer's state gradient (16.8 MB each at R1).
                segment.Steps[k].Dispose();
                g.Dispose();
                gpost.Dispose();
                gy.Dispose();
                g = gx;
                if (previous is not null) (gpost, gy) = (previous.Gpost, previous.Gy);
            }
            var result = new List<Tensor> { g.MoveToOuterDisposeScope(), null! };
            foreach (var p in segment.Connections.SelectMany(c => c.parameters()))
                result.Add(parameterGrads.TryGetValue(p, out var pg) ? pg.MoveToOuterDisposeScope() : null!);
            return result;
        }
        finally
        {
            segment.Dispose();
        }
    }

    /// <summary>
    /// The fused forward of <paramref name="connections"/> from <paramref name="state"/>: per connection its coefficients and
    /// branch input, the branch (<paramref name="branch"/> returns its output and the input tensor it ran on), the write.
    /// Each write is made inside the next connection's coefficient pass, on the tokens that pass holds in cache; the last
    /// runs alone. <paramref name="finished"/> then owns each sub-layer's input state, coefficients, branch input and
    /// output, to keep for a backward or dispose. Returns the last state.
    /// </summary>
    internal static Tensor Walk(Tensor state, IReadOnlyList<Connection> connections, bool withGraph,
        Func<Connection, Tensor, (Tensor Y, Tensor Input)> branch, Action<Tensor, FusedCoefficients, Tensor, Tensor> finished)
    {
        var coefficients = connections[0].FusedCoefficients(state, withGraph, withBranchInput: true);
        for (var k = 0; k < connections.Count; k++)
        {
            using var scope = NewDisposeScope();
            var (y, input) = branch(connections[k], coefficients.TakeBranchInput(state));
            var write = new StreamMixing.WritePass(state, coefficients.Res, coefficients.Post, y.detach());
            var next = k + 1 < connections.Count
                ? connections[k + 1].FusedCoefficients(write.Output, withGraph, withBranchInput: true, write).Keep()
                : null;
            if (next is null) write.Run();
            finished(state, coefficients, input, y);
            state = write.Output.MoveToOuterDisposeScope();
            if (next is not null) coefficients = next;
        }
        return state;
    }

    /// <summary>Rebuilds each step's input state and coefficients from the segment input and the kept branch outputs.</summary>
    static void Recompute(Segment segment)
    {
        var connections = segment.Connections;
        var state = segment.Input!.alias();
        var coefficients = connections[0].FusedCoefficients(state, withGraph: true, withBranchInput: false).Keep();
        for (var k = 0; k < segment.Steps.Count; k++)
        {
            var step = segment.Steps[k];
            segment.Steps[k] = step with { State = Keep(state), Coefficients = coefficients };
            if (k + 1 == segment.Steps.Count) break;   // the segment's output state is not needed in backward
            var write = new StreamMixing.WritePass(state, coefficients.Res, coefficients.Post, step.Y.detach());
            coefficients = connections[k + 1].FusedCoefficients(write.Output, withGraph: true, withBranchInput: false, write).Keep();
            state = write.Output;
        }
    }

    static (Tensor Y, Tensor Leaf) RunBranch(Connection connection, Tensor u)
    {
        var leaf = u.requires_grad_(true);
        using (enable_grad()) return (connection.Branch.call(leaf), leaf);
    }

    /// <summary>Takes a tensor out of the caller's dispose scope: it lives until backward (or the segment is disposed).</summary>
    static Tensor Keep(Tensor t) => t.DetachFromDisposeScope();

    sealed record Step(Tensor? State, FusedCoefficients? Coefficients, Tensor Leaf, Tensor Y)
    {
        public void Dispose()
        {
            State?.Dispose();
            Coefficients?.Dispose();
            Leaf.Dispose();
            Y.Dispose();
        }
    }

    /// <summary>What a segment keeps from forward to backward.</summary>
    sealed class Segment(IReadOnlyList<Connection> connections, bool recompute) : IDisposable
    {
        public IReadOnlyList<Connection> Connections { get; } = connections;
        public bool Recompute { get; } = recompute;
        public Tensor? Input { get; set; }
        public List<Step> Steps { get; } = [];

        public void Dispose()
        {
            Input?.Dispose();
            foreach (var step in Steps) step.Dispose();
            Steps.Clear();
        }
    }
}
