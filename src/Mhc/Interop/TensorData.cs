using static TorchSharp.torch;

namespace Mhc.Interop;

/// <summary>The element types weight files can hold, with their names in safetensors headers and their sizes.</summary>
static class TensorData
{
    static readonly (string Name, ScalarType Type, int Bytes)[] Types =
    [
        ("F64", ScalarType.Float64, 8), ("F32", ScalarType.Float32, 4), ("F16", ScalarType.Float16, 2), ("BF16", ScalarType.BFloat16, 2),
        ("I64", ScalarType.Int64, 8), ("I32", ScalarType.Int32, 4), ("I16", ScalarType.Int16, 2), ("I8", ScalarType.Int8, 1),
        ("U8", ScalarType.Byte, 1), ("BOOL", ScalarType.Bool, 1),
    ];

    /// <summary>The type called <paramref name="name"/> in a safetensors header, or null when it is not one we read.</summary>
    public static (ScalarType Type, int Bytes)? FromSafetensorsName(string name) =>
        Types.FirstOrDefault(t => t.Name == name) is { Name: not null } t ? (t.Type, t.Bytes) : null;

    /// <summary>The safetensors name of <paramref name="type"/>.</summary>
    public static string SafetensorsName(ScalarType type) =>
        Types.FirstOrDefault(t => t.Type == type).Name ?? throw new ArgumentException($"tensors of type {type} cannot be written to a weight file.", nameof(type));

    /// <summary>Bytes per element of <paramref name="type"/>.</summary>
    public static int Size(ScalarType type) =>
        Types.FirstOrDefault(t => t.Type == type) is { Name: not null } t ? t.Bytes : throw new ArgumentException($"tensors of type {type} are not supported in weight files.", nameof(type));

    /// <summary>Number of elements of <paramref name="shape"/>, or null when a dimension is negative or the product overflows.</summary>
    public static long? Count(IReadOnlyList<long> shape)
    {
        long count = 1;
        foreach (var dimension in shape)
        {
            if (dimension < 0) return null;
            try
            {
                count = checked(count * dimension);
            }
            catch (OverflowException)
            {
                return null;
            }
        }
        return count;
    }

    /// <summary>A CPU tensor of <paramref name="shape"/> and <paramref name="type"/> filled with the next bytes of <paramref name="stream"/>.</summary>
    public static Tensor Read(Stream stream, long[] shape, ScalarType type)
    {
        var tensor = empty(shape, type);
        try
        {
            tensor.ReadBytesFromStream(stream);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>The shape as text, e.g. <c>[16, 64]</c>.</summary>
    public static string Shape(IEnumerable<long> shape) => $"[{string.Join(", ", shape)}]";
}
