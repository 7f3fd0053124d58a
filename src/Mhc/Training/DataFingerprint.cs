using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Mhc.Data;

namespace Mhc.Training;

/// <summary>
/// What a run was trained on, in a few characters: a SHA-256 of the tokens (or pixels and labels) as loaded, computed once
/// at the start and kept in every checkpoint, so a resume or an evaluation can tell when the data has changed since.
/// The built-in data sets are named instead: they follow from the config, which is compared on its own.
/// </summary>
public static class DataFingerprint
{
    /// <summary>The fingerprint of a built-in data set.</summary>
    public const string BuiltIn = "built-in";

    /// <summary>SHA-256 of the training and validation tokens, 16 hex digits.</summary>
    /// <param name="corpus">A loaded corpus.</param>
    public static string Of(TokenCorpus corpus)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(MemoryMarshal.AsBytes(corpus.Train.AsSpan()));
        hash.AppendData(MemoryMarshal.AsBytes(corpus.Validation.AsSpan()));
        return Digest(hash);
    }

    /// <summary>SHA-256 of the class names, pixels and labels of both splits, 16 hex digits.</summary>
    /// <param name="images">A loaded image set.</param>
    public static string Of(ImageDataset images)
    {
        ArgumentNullException.ThrowIfNull(images);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes(string.Join('\n', images.ClassNames)));
        hash.AppendData(images.TrainPixels);
        hash.AppendData(MemoryMarshal.AsBytes(images.TrainLabels.AsSpan()));
        hash.AppendData(images.ValidationPixels);
        hash.AppendData(MemoryMarshal.AsBytes(images.ValidationLabels.AsSpan()));
        return Digest(hash);
    }

    static string Digest(IncrementalHash hash) => "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
}
