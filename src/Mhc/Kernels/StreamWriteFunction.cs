using System.Runtime.CompilerServices;
using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Kernels;

/// <summary>
/// <c>out_i = Σ_j res_ij x_j + post_i · y</c> in one pass over the stream state, forward and backward
/// (the merge of HC's residual and post mappings that the mHC paper fuses). CPU, float32/float64.
/// </summary>
sealed class StreamWriteFunction : autograd.SingleTensorFunction<StreamWriteFunction>
{
    const long Chunk = 16;

    public override string Name => "MhcStreamWrite";

    public static Tensor Apply(Tensor x, Tensor res, Tensor post, Tensor y) => apply(x, res, post, y);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, res, post, y) = (((Tensor)vars[0]).contiguous(), ((Tensor)vars[1]).contiguous(), ((Tensor)vars[2]).contiguous(), ((Tensor)vars[3]).contiguous());
        ctx.save_for_backward([x, res, post, y]);
        var output = empty_like(x);
        if (x.dtype == ScalarType.Float32) Forward<float>(x, res, post, y, output);
        else Forward<double>(x, res, post, y, output);
        return output;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
    {
        var saved = ctx.get_saved_variables();
        var (x, res, post, y) = (saved[0], saved[1], saved[2], saved[3]);
        var g = grad.contiguous();
        var (gx, gres, gpost, gy) = (empty_like(x), empty_like(res), empty_like(post), empty_like(y));
        if (x.dtype == ScalarType.Float32) Backward<float>(x, res, post, y, g, gx, gres, gpost, gy);
        else Backward<double>(x, res, post, y, g, gx, gres, gpost, gy);
        return [gx, gres, gpost, gy];
    }

    static void Forward<T>(Tensor x, Tensor res, Tensor post, Tensor y, Tensor output) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (n, d) = ((int)x.size(-2), (int)x.size(-1));
        CpuTensor.ParallelChunks(x.numel() / (n * d), Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> xs = CpuTensor.Span<T>(x), rs = CpuTensor.Span<T>(res), ps = CpuTensor.Span<T>(post), ys = CpuTensor.Span<T>(y);
            var os = CpuTensor.Span<T>(output);
            for (var t = (int)t0; t < t1; t++)
            {
                var yt = ys.Slice(t * d, d);
                for (var i = 0; i < n; i++)
                {
                    var oi = os.Slice((t * n + i) * d, d);
                    VectorOps.Scale(oi, yt, ps[t * n + i]);
                    for (var j = 0; j < n; j++)
                        VectorOps.AddScaled(oi, xs.Slice((t * n + j) * d, d), rs[(t * n + i) * n + j]);
                }
            }
        });
    }

    static void Backward<T>(Tensor x, Tensor res, Tensor post, Tensor y, Tensor grad, Tensor gx, Tensor gres, Tensor gpost, Tensor gy)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (n, d) = ((int)x.size(-2), (int)x.size(-1));
        CpuTensor.ParallelChunks(x.numel() / (n * d), Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> xs = CpuTensor.Span<T>(x), rs = CpuTensor.Span<T>(res), ps = CpuTensor.Span<T>(post), ys = CpuTensor.Span<T>(y), gs = CpuTensor.Span<T>(grad);
            Span<T> gxs = CpuTensor.Span<T>(gx), grs = CpuTensor.Span<T>(gres), gps = CpuTensor.Span<T>(gpost), gys = CpuTensor.Span<T>(gy);
            for (var t = (int)t0; t < t1; t++)
            {
                var yt = ys.Slice(t * d, d);
                var gyt = gys.Slice(t * d, d);
                gyt.Clear();
                for (var i = 0; i < n; i++)
                {
                    var gi = gs.Slice((t * n + i) * d, d);
                    VectorOps.AddScaled(gyt, gi, ps[t * n + i]);                 // gy = Σ_i post_i g_i
                    gps[t * n + i] = VectorOps.Dot(gi, yt);                      // gpost_i = <g_i, y>
                    for (var j = 0; j < n; j++)
                        grs[(t * n + i) * n + j] = VectorOps.Dot(gi, xs.Slice((t * n + j) * d, d));   // gres_ij = <g_i, x_j>
                }
                for (var j = 0; j < n; j++)
                {
                    var gxj = gxs.Slice((t * n + j) * d, d);                    // gx_j = Σ_i res_ij g_i
                    VectorOps.Scale(gxj, gs.Slice(t * n * d, d), rs[t * n * n + j]);
                    for (var i = 1; i < n; i++)
                        VectorOps.AddScaled(gxj, gs.Slice((t * n + i) * d, d), rs[(t * n + i) * n + j]);
                }
            }
        });
    }
}
