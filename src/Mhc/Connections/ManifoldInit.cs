using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// The initial biases of mHC and its variants (spec §5.1): at step 0 every one of them is the Pre-Norm residual network,
/// yet the streams can separate.
/// </summary>
static class ManifoldInit
{
    /// <summary>
    /// Initial H_pre of the stream sub-layer k reads (k mod n); the other streams share the rest, so H_pre sums to 1
    /// and the branch input is the embedding's copy exactly. Reading the streams unequally breaks their permutation
    /// symmetry, without which they would stay identical for ever.
    /// </summary>
    public const double PreRead = 0.9;

    /// <summary>Off-diagonal initial logit of H_res: identity-leaning but far from saturation.</summary>
    public const double ResOffDiagonal = -4.0;

    /// <summary><c>b_pre</c> <c>[n]</c>: logit(0.9) for stream k mod n, logit(0.1 / (n − 1)) for the others.</summary>
    public static Tensor PreBias(int n, int sublayerIndex)
    {
        var others = Logit((1 - PreRead) / (n - 1));
        return tensor(Enumerable.Range(0, n).Select(i => (float)(i == sublayerIndex % n ? Logit(PreRead) : others)).ToArray());
    }

    /// <summary>
    /// Logits whose softmax-like projection starts H_res: for the n² entries of a matrix, diagonal 0 and off-diagonal −4;
    /// for n! permutation weights, the identity 0 and the others −4; all 0 with <see cref="ResInit.Uniform"/>.
    /// </summary>
    /// <param name="identity">Which of the logits stand for the identity.</param>
    /// <param name="init">Identity-leaning or uniform.</param>
    public static Tensor ResBias(bool[] identity, ResInit init) =>
        tensor(identity.Select(i => (float)(init == ResInit.Uniform || i ? 0 : ResOffDiagonal)).ToArray());

    static double Logit(double p) => Math.Log(p / (1 - p));
}
