using static TorchSharp.torch;

namespace Mhc.Interop;

/// <summary>One tensor of a weight file: its name, element type and shape, its data read from disk only when asked.</summary>
/// <param name="Name">Name in the file.</param>
/// <param name="Type">Element type as stored.</param>
/// <param name="Shape">Shape as stored.</param>
/// <param name="Read">Reads the data into a new CPU tensor.</param>
sealed record StoredTensor(string Name, ScalarType Type, long[] Shape, Func<Tensor> Read);
