using System.Buffers.Binary;
using System.Text.Json;
using static TorchSharp.torch;

namespace Mhc.Interop;

/// <summary>
/// The safetensors format: an 8-byte little-endian header length, a JSON header naming every tensor's type, shape and
/// byte range (<c>data_offsets</c>, relative to the data that follows), plus an optional <c>__metadata__</c> map of
/// strings, then the raw little-endian data. Written here because TorchSharp.PyBridge's reader neither checks a header
/// against the file nor reads <c>__metadata__</c>; every field of a file is checked before any data is read.
/// </summary>
static class Safetensors
{
    /// <summary>Largest header accepted (the reference implementation's limit): a header is an index, not data.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    const string MetadataKey = "__metadata__";

    /// <summary>Writes <paramref name="tensors"/> (CPU, contiguous) in order, with <paramref name="metadata"/>.</summary>
    public static void Write(Stream stream, IReadOnlyList<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        using var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            json.WriteStartObject(MetadataKey);
            foreach (var (key, value) in metadata) json.WriteString(key, value);
            json.WriteEndObject();
            long offset = 0;
            foreach (var (name, tensor) in tensors)
            {
                var bytes = tensor.numel() * TensorData.Size(tensor.dtype);
                json.WriteStartObject(name);
                json.WriteString("dtype", TensorData.SafetensorsName(tensor.dtype));
                json.WriteStartArray("shape");
                foreach (var dimension in tensor.shape) json.WriteNumberValue(dimension);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        // Padded with spaces to a multiple of 8 bytes, so the data starts aligned (as the reference writer does).
        var length = (header.Length + 7) / 8 * 8;
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)length);
        stream.Write(prefix);
        header.WriteTo(stream);
        for (var i = header.Length; i < length; i++) stream.WriteByte((byte)' ');
        foreach (var (_, tensor) in tensors) tensor.contiguous().WriteBytesToStream(stream);
    }

    /// <summary>
    /// Reads and checks the header of the safetensors file open in <paramref name="stream"/>: the tensors in header
    /// order and the metadata. A header that lies (a length past the file, ranges outside the data or overlapping,
    /// sizes that do not match the shape, an unknown type, duplicate names) throws <see cref="WeightFileException"/>.
    /// </summary>
    public static (IReadOnlyList<StoredTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(FileStream stream)
    {
        var path = stream.Name;
        Span<byte> prefix = stackalloc byte[8];
        if (stream.Length < 8 || stream.Read(prefix) != 8)
            throw new WeightFileException($"weight file '{path}' is not a safetensors file: it is shorter than the 8-byte header length.");
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes)
            throw new WeightFileException($"weight file '{path}' claims a header of {headerLength:N0} bytes (at most {MaxHeaderBytes:N0} are accepted): not a safetensors file, or a damaged one.");
        if ((long)headerLength > stream.Length - 8)
            throw new WeightFileException($"weight file '{path}' claims a header of {headerLength:N0} bytes but holds only {stream.Length - 8:N0} after the length.");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        var dataStart = 8 + (long)headerLength;
        var dataLength = stream.Length - dataStart;

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new WeightFileException($"weight file '{path}' has a header that is not valid JSON: {e.Message}", e);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new WeightFileException($"weight file '{path}' has a header that is not a JSON object.");
            var metadata = new Dictionary<string, string>();
            var tensors = new List<(StoredTensor Tensor, long Begin, long End)>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!names.Add(property.Name))
                    throw new WeightFileException($"weight file '{path}' names '{property.Name}' twice in its header.");
                if (property.Name == MetadataKey)
                {
                    ReadMetadata(path, property.Value, metadata);
                    continue;
                }
                tensors.Add(ReadEntry(stream, dataStart, dataLength, property.Name, property.Value));
            }
            // Ranges must not overlap: each byte of data belongs to one tensor at most.
            var ordered = tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ToList();
            for (var i = 1; i < ordered.Count; i++)
                if (ordered[i].Begin < ordered[i - 1].End)
                    throw new WeightFileException($"weight file '{path}': the data of '{ordered[i].Tensor.Name}' (bytes {ordered[i].Begin}–{ordered[i].End}) overlaps that of '{ordered[i - 1].Tensor.Name}' (bytes {ordered[i - 1].Begin}–{ordered[i - 1].End}).");
            return (tensors.Select(t => t.Tensor).ToList(), metadata);
        }
    }

    static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new WeightFileException($"weight file '{path}': {MetadataKey} is not an object of strings.");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw new WeightFileException($"weight file '{path}': {MetadataKey}.{item.Name} is not a string.");
            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    static (StoredTensor Tensor, long Begin, long End) ReadEntry(FileStream stream, long dataStart, long dataLength, string name, JsonElement entry)
    {
        var path = stream.Name;
        WeightFileException Bad(string problem) => new($"weight file '{path}': tensor '{name}' {problem}.");
        if (entry.ValueKind != JsonValueKind.Object) throw Bad("has a header entry that is not an object");
        if (!entry.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String)
            throw Bad("has no dtype");
        if (TensorData.FromSafetensorsName(dtype.GetString()!) is not var (type, size))
            throw Bad($"has dtype '{dtype.GetString()}', which is not one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL");
        var shape = Integers(entry, "shape") ?? throw Bad("has no shape of whole numbers");
        var offsets = Integers(entry, "data_offsets");
        if (offsets is not [var begin, var end]) throw Bad("has no data_offsets [begin, end]");
        if (TensorData.Count(shape) is not { } count) throw Bad($"has an impossible shape {TensorData.Shape(shape)}");
        if (begin < 0 || end < begin || end > dataLength)
            throw Bad($"claims bytes {begin}–{end} of the data, which holds {dataLength:N0} bytes");
        if (count > (end - begin) / size || count * size != end - begin)
            throw Bad($"of shape {TensorData.Shape(shape)} and type {dtype.GetString()} does not fit the {end - begin:N0} bytes it claims");
        var tensor = new StoredTensor(name, type, shape, () =>
        {
            stream.Position = dataStart + begin;
            return TensorData.Read(stream, shape, type);
        });
        return (tensor, begin, end);
    }

    static long[]? Integers(JsonElement entry, string property)
    {
        if (!entry.TryGetProperty(property, out var array) || array.ValueKind != JsonValueKind.Array) return null;
        var values = new List<long>();
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var value)) return null;
            values.Add(value);
        }
        return values.ToArray();
    }
}
