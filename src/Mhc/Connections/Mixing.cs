using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// The coefficients a connection applies to one stream state <c>x: [B, T, n, d]</c>:
/// branch input <c>u = Σ_j Pre_j x_j</c>, output stream <c>i = Σ_j Res_ij x_j + Post_i · F(u)</c>.
/// </summary>
/// <param name="Pre">H_pre, <c>[B, T, n]</c>: how the branch reads the streams.</param>
/// <param name="Post">H_post, <c>[B, T, n]</c>: how the branch output is written back to each stream.</param>
/// <param name="Res">H_res, <c>[B, T, n, n]</c>; row i gives output stream i.</param>
public sealed record Mixing(Tensor Pre, Tensor Post, Tensor Res) : IDisposable
{
    /// <summary>Disposes the three coefficient tensors.</summary>
    public void Dispose()
    {
        Pre.Dispose();
        Post.Dispose();
        Res.Dispose();
    }
}
