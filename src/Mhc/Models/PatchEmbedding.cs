using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Models;

/// <summary>Cuts images into non-overlapping p×p patches and projects each to d: <c>[B, C, H, W]</c> → <c>[B, (H/p)·(W/p), d]</c>.</summary>
sealed class PatchEmbedding : nn.Module<Tensor, Tensor>
{
    readonly Conv2d proj;

    /// <summary>Creates the embedding.</summary>
    /// <param name="channels">Input channels.</param>
    /// <param name="patchSize">Patch side p.</param>
    /// <param name="dModel">Output width d.</param>
    public PatchEmbedding(int channels, int patchSize, int dModel) : base("patch_embedding")
    {
        // A p×p convolution with stride p is a linear map of each flattened patch.
        proj = nn.Conv2d(channels, dModel, kernel_size: patchSize, stride: patchSize);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor images)
    {
        using var patches = proj.call(images);                 // [B, d, H/p, W/p]
        using var flat = patches.flatten(2);                    // [B, d, P]
        return flat.transpose(1, 2).contiguous();               // [B, P, d]
    }
}
