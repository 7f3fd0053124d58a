namespace Mhc.Interop;

/// <summary>
/// A weight file cannot be read or does not fit the model: a header that lies, a tensor that is missing, unexpected,
/// of the wrong shape or type. The message names the file and the tensor. Nothing has been loaded when it is thrown.
/// </summary>
public sealed class WeightFileException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Names the file, the tensor and what is wrong.</param>
    /// <param name="inner">The underlying failure, if any.</param>
    public WeightFileException(string message, Exception? inner = null) : base(message, inner) { }
}
