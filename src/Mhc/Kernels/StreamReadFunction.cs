using System.Runtime.CompilerServices;
using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Kernels;

/// <summary><c>u = Σ_j pre_j x_j</c> (the branch input) in one pass over the stream state, forward and backward. CPU, float32/float64.</summary>
sealed class StreamReadFunction : autograd.SingleTensorFunction<StreamReadFunction>
{
    const long Chunk = 32;

    public override string Name => "MhcStreamRead";

    public static Tensor Apply(Tensor x, Tensor pre) => apply(x, pre);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, pre) = (((Tensor)vars[0]).contiguous(), ((Tensor)vars[1]).contiguous());
        ctx.save_for_backward([x, pre]);
        var shape = x.shape[..^2].Append(x.size(-1)).ToArray();
        var output = empty(shape, x.dtype, x.device);
        if (x.dtype == ScalarType.Float32) Forward<float>(x, pre, output);
        else Forward<double>(x, pre, output);
        return output;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
    {
        var saved = ctx.get_saved_variables();
        var (x, pre) = (saved[0], saved[1]);
        var g = grad.contiguous();
        var (gx, gpre) = (empty_like(x), empty_like(pre));
        if (x.dtype == ScalarType.Float32) Backward<float>(x, pre, g, gx, gpre);
        else Backward<double>(x, pre, g, gx, gpre);
        return [gx, gpre];
    }

    static void Forward<T>(Tensor x, Tensor pre, Tensor output) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (n, d) = ((int)x.size(-2), (int)x.size(-1));
        CpuTensor.ParallelChunks(x.numel() / (n * d), Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> xs = CpuTensor.Span<T>(x), ps = CpuTensor.Span<T>(pre);
            var us = CpuTensor.Span<T>(output);
            for (var t = (int)t0; t < t1; t++)
            {
                var ut = us.Slice(t * d, d);
                VectorOps.Scale(ut, xs.Slice(t * n * d, d), ps[t * n]);
                for (var j = 1; j < n; j++) VectorOps.AddScaled(ut, xs.Slice((t * n + j) * d, d), ps[t * n + j]);
            }
        });
    }

    static void Backward<T>(Tensor x, Tensor pre, Tensor grad, Tensor gx, Tensor gpre) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (n, d) = ((int)x.size(-2), (int)x.size(-1));
        CpuTensor.ParallelChunks(x.numel() / (n * d), Chunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
        {
            ReadOnlySpan<T> xs = CpuTensor.Span<T>(x), ps = CpuTensor.Span<T>(pre), gs = CpuTensor.Span<T>(grad);
            Span<T> gxs = CpuTensor.Span<T>(gx), gps = CpuTensor.Span<T>(gpre);
            for (var t = (int)t0; t < t1; t++)
            {
                var gt = gs.Slice(t * d, d);
                for (var j = 0; j < n; j++)
                {
                    VectorOps.Scale(gxs.Slice((t * n + j) * d, d), gt, ps[t * n + j]);   // gx_j = pre_j gu
                    gps[t * n + j] = VectorOps.Dot(gt, xs.Slice((t * n + j) * d, d));   // gpre_j = <gu, x_j>
                }
            }
        });
    }
}
