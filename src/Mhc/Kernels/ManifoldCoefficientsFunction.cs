using System.Runtime.CompilerServices;
using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Kernels;

/// <summary>
/// mHC's coefficient non-linearities in one custom function (mHC paper §4.3, fused kernels): from the
/// RMS-normalised projection <c>p = [p_pre | p_post | p_res]</c> of each token,
/// <c>H_pre = sigmoid(α_pre p_pre + b_pre)</c>, <c>H_post = 2 sigmoid(α_post p_post + b_post)</c>,
/// <c>H_res = Sinkhorn(α_res mat(p_res) + b_res)</c>. The backward recomputes the Sinkhorn iterations per
/// token instead of keeping 40 intermediate tensors alive. CPU, float32/float64.
/// </summary>
sealed class ManifoldCoefficientsFunction : autograd.MultiTensorFunction<ManifoldCoefficientsFunction>
{
    const long Chunk = 64;

    public override string Name => "MhcManifoldCoefficients";

    /// <summary>(pre [..., n], post [..., n], res [..., n, n]) from projected [..., n² + 2n].</summary>
    public static (Tensor Pre, Tensor Post, Tensor Res) Apply(Tensor projected, Tensor alphaPre, Tensor alphaPost, Tensor alphaRes,
        Tensor biasPre, Tensor biasPost, Tensor biasRes, int iterations)
    {
        var outputs = apply(projected, alphaPre, alphaPost, alphaRes, biasPre, biasPost, biasRes, iterations);
        return (outputs[0], outputs[1], outputs[2]);
    }

    public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var inputs = Enumerable.Range(0, 7).Select(i => ((Tensor)vars[i]).contiguous()).ToArray();
        var iterations = (int)vars[7];
        var n = (int)inputs[4].size(0);
        var leading = inputs[0].shape[..^1];
        var pre = empty([.. leading, n], inputs[0].dtype);
        var post = empty([.. leading, n], inputs[0].dtype);
        var res = empty([.. leading, n, n], inputs[0].dtype);
        ctx.save_for_backward([.. inputs, pre, post]);
        ctx.save_data("iterations", iterations);
        if (pre.dtype == ScalarType.Float32) Forward<float>(inputs, pre, post, res, n, iterations);
        else Forward<double>(inputs, pre, post, res, n, iterations);
        return [pre, post, res];
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads)
    {
        var saved = ctx.get_saved_variables();
        var iterations = (int)ctx.get_data("iterations");
        var n = (int)saved[4].size(0);
        var (gPre, gPost, gRes) = (grads[0].contiguous(), grads[1].contiguous(), grads[2].contiguous());
        List<Tensor> result = saved[0].dtype == ScalarType.Float32
            ? Backward<float>(saved, gPre, gPost, gRes, n, iterations)
            : Backward<double>(saved, gPre, gPost, gRes, n, iterations);
        result.Add(null!);   // iterations is not a tensor
        return result;
    }

    static void Forward<T>(Tensor[] inputs, Tensor pre, Tensor post, Tensor res, int n, int iterations) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var width = n * n + 2 * n;
        var (aPre, aPost, aRes) = (Scalar<T>(inputs[1]), Scalar<T>(inputs[2]), Scalar<T>(inputs[3]));
        var two = T.One + T.One;
        CpuTensor.ParallelChunks(pre.numel() / n, Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> p = CpuTensor.Span<T>(inputs[0]), bPre = CpuTensor.Span<T>(inputs[4]), bPost = CpuTensor.Span<T>(inputs[5]), bRes = CpuTensor.Span<T>(inputs[6]);
            Span<T> outPre = CpuTensor.Span<T>(pre), outPost = CpuTensor.Span<T>(post), outRes = CpuTensor.Span<T>(res);
            var count = (int)(t1 - t0);
            var logits = new T[count * n * n];
            for (var t = (int)t0; t < t1; t++)
            {
                var pt = p.Slice(t * width, width);
                for (var i = 0; i < n; i++)
                {
                    outPre[t * n + i] = Sigmoid(aPre * pt[i] + bPre[i]);
                    outPost[t * n + i] = two * Sigmoid(aPost * pt[n + i] + bPost[i]);
                }
                for (var k = 0; k < n * n; k++) logits[(t - (int)t0) * n * n + k] = aRes * pt[2 * n + k] + bRes[k];
            }
            SinkhornKernel.Forward<T>(logits, outRes.Slice((int)t0 * n * n, count * n * n), count, n, iterations,
                new Vector<T>[SinkhornKernel.ScratchSize(n, iterations)]);
        });
    }

    static List<Tensor> Backward<T>(List<Tensor> saved, Tensor gPre, Tensor gPost, Tensor gRes, int n, int iterations) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (projected, pre, post) = (saved[0], saved[7], saved[8]);
        var width = n * n + 2 * n;
        var tokens = pre.numel() / n;
        var (aPre, aPost, aRes) = (Scalar<T>(saved[1]), Scalar<T>(saved[2]), Scalar<T>(saved[3]));
        var gProjected = empty_like(projected);
        // Per-chunk partial sums of the parameter gradients, added in chunk order: reproducible for any thread count.
        var partialWidth = 3 + 2 * n + n * n;
        var chunks = (tokens + Chunk - 1) / Chunk;
        var partials = new T[chunks * partialWidth];
        var half = T.One / (T.One + T.One);
        CpuTensor.ParallelChunks(tokens, Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> p = CpuTensor.Span<T>(projected), bRes = CpuTensor.Span<T>(saved[6]), sPre = CpuTensor.Span<T>(pre), sPost = CpuTensor.Span<T>(post);
            ReadOnlySpan<T> gp = CpuTensor.Span<T>(gPre), gq = CpuTensor.Span<T>(gPost), gr = CpuTensor.Span<T>(gRes);
            var gx = CpuTensor.Span<T>(gProjected);
            var partial = partials.AsSpan((int)(t0 / Chunk) * partialWidth, partialWidth);
            var count = (int)(t1 - t0);
            var logits = new T[count * n * n];
            var gLogits = new T[count * n * n];
            for (var t = (int)t0; t < t1; t++)
            {
                var pt = p.Slice(t * width, width);
                var gt = gx.Slice(t * width, width);
                for (var i = 0; i < n; i++)
                {
                    var s = sPre[t * n + i];
                    var z = gp[t * n + i] * s * (T.One - s);                        // d sigmoid = s(1 − s)
                    gt[i] = z * aPre;
                    partial[0] += z * pt[i];
                    partial[3 + i] += z;
                    var q = sPost[t * n + i];
                    var w = gq[t * n + i] * q * (T.One - q * half);                  // d 2·sigmoid = q(1 − q/2)
                    gt[n + i] = w * aPost;
                    partial[1] += w * pt[n + i];
                    partial[3 + n + i] += w;
                }
                for (var k = 0; k < n * n; k++) logits[(t - (int)t0) * n * n + k] = aRes * pt[2 * n + k] + bRes[k];
            }
            SinkhornKernel.Backward<T>(logits, gr.Slice((int)t0 * n * n, count * n * n), gLogits, count, n, iterations,
                new Vector<T>[SinkhornKernel.ScratchSize(n, iterations)]);
            for (var t = (int)t0; t < t1; t++)
            {
                var pt = p.Slice(t * width, width);
                var gt = gx.Slice(t * width, width);
                for (var k = 0; k < n * n; k++)
                {
                    var gl = gLogits[(t - (int)t0) * n * n + k];
                    gt[2 * n + k] = gl * aRes;
                    partial[2] += gl * pt[2 * n + k];
                    partial[3 + 2 * n + k] += gl;
                }
            }
        });
        var total = new T[partialWidth];
        for (var c = 0; c < chunks; c++)
            for (var k = 0; k < partialWidth; k++) total[k] += partials[c * partialWidth + k];
        var dtype = projected.dtype;
        Tensor Make(int offset, long[] shape)
        {
            var values = total[offset..(offset + (int)shape.Aggregate(1L, (a, b) => a * b))].Select(double.CreateTruncating).ToArray();
            return (shape.Length == 0 ? tensor(values[0]) : tensor(values, shape)).to(dtype);
        }
        return [gProjected, Make(0, []), Make(1, []), Make(2, []), Make(3, [n]), Make(3 + n, [n]), Make(3 + 2 * n, [n, n])];
    }

    static T Sigmoid<T>(T z) where T : IFloatingPointIeee754<T> => T.One / (T.One + T.Exp(-z));

    static T Scalar<T>(Tensor t) where T : unmanaged, IFloatingPointIeee754<T> => CpuTensor.Span<T>(t)[0];
}
