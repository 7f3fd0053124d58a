using System.Collections;
using System.IO.Compression;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Mhc.Interop;

/// <summary>
/// PyTorch's state_dict files as <c>torch.save(model.state_dict())</c> writes them: a zip archive holding
/// <c>&lt;name&gt;/data.pkl</c> (the dict, pickled, each tensor a persistent reference to a storage record) and
/// <c>&lt;name&gt;/data/&lt;key&gt;</c> (each storage's raw little-endian bytes). Written with TorchSharp.PyBridge;
/// read with <see cref="RestrictedUnpickler"/>, which refuses every global PyTorch's <c>weights_only</c> refuses.
/// </summary>
static class PyTorchFile
{
    /// <summary>Largest pickle accepted: a state dict's pickle is an index of names and shapes, not data.</summary>
    const long MaxPickleBytes = 256L << 20;

    /// <summary>Writes <paramref name="tensors"/> as a dict of name → tensor that <c>torch.load(..., weights_only=True)</c> reads.</summary>
    public static void Write(Stream stream, IReadOnlyList<(string Name, Tensor Tensor)> tensors)
    {
        var dict = new Dictionary<string, Tensor>();
        foreach (var (name, tensor) in tensors) dict.Add(name, tensor.contiguous());
        PyTorchPickler.PickleStateDict(stream, (IDictionary)dict, leaveOpen: true);
    }

    /// <summary>The tensors of the state dict in <paramref name="stream"/>, in the pickle's order; every reference is checked first.</summary>
    public static IReadOnlyList<StoredTensor> Read(FileStream stream)
    {
        var path = stream.Name;
        ZipArchive archive;
        try
        {
            archive = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new WeightFileException($"weight file '{path}' is not a PyTorch state_dict file (not a zip archive): {e.Message}", e);
        }
        var pickle = archive.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
        if (pickle.Count != 1)
            throw new WeightFileException($"weight file '{path}' is a zip archive but not a PyTorch state_dict file: it holds {pickle.Count} '<name>/data.pkl' records instead of one.");
        var prefix = pickle[0].FullName[..^"data.pkl".Length];
        if (pickle[0].Length > MaxPickleBytes)
            throw new WeightFileException($"weight file '{path}': its pickle claims {pickle[0].Length:N0} bytes (at most {MaxPickleBytes:N0} are accepted).");
        var bytes = new MemoryStream();
        using (var data = pickle[0].Open()) data.CopyTo(bytes);
        bytes.Position = 0;
        var root = RestrictedUnpickler.Load(bytes, path);
        if (root is not Dictionary<string, object?> dict)
            throw new WeightFileException($"weight file '{path}' does not hold a dict of tensors (a state_dict) but a {root?.GetType().Name ?? "None"}.");
        var tensors = new List<StoredTensor>();
        foreach (var (name, value) in dict)
        {
            if (value is not RestrictedUnpickler.TensorRef tensor)
                throw new WeightFileException($"weight file '{path}': entry '{name}' is not a tensor.");
            tensors.Add(Check(archive, prefix, path, name, tensor));
        }
        return tensors;
    }

    static StoredTensor Check(ZipArchive archive, string prefix, string path, string name, RestrictedUnpickler.TensorRef tensor)
    {
        WeightFileException Bad(string problem) => new($"weight file '{path}': tensor '{name}' {problem}.");
        var type = tensor.Storage.StorageType switch
        {
            "FloatStorage" => ScalarType.Float32,
            "DoubleStorage" => ScalarType.Float64,
            "HalfStorage" => ScalarType.Float16,
            "BFloat16Storage" => ScalarType.BFloat16,
            "LongStorage" => ScalarType.Int64,
            "IntStorage" => ScalarType.Int32,
            "ShortStorage" => ScalarType.Int16,
            "CharStorage" => ScalarType.Int8,
            "ByteStorage" => ScalarType.Byte,
            _ => ScalarType.Bool,
        };
        var record = archive.GetEntry($"{prefix}data/{tensor.Storage.Key}") ?? throw Bad($"refers to storage '{tensor.Storage.Key}', which the archive does not hold");
        var size = TensorData.Size(type);
        if (tensor.Storage.Elements > record.Length / size || tensor.Storage.Elements * size != record.Length)
            throw Bad($"refers to {tensor.Storage.Elements:N0} elements of {type} but its storage record holds {record.Length:N0} bytes");
        if (tensor.Size.Length != tensor.Stride.Length || TensorData.Count(tensor.Size) is not { } count)
            throw Bad($"has an impossible size {TensorData.Shape(tensor.Size)} or stride {TensorData.Shape(tensor.Stride)}");
        // The view must stay inside its storage: offset + Σ (size_i − 1)·stride_i < elements.
        if (count > 0)
        {
            long last = tensor.Offset;
            try
            {
                for (var i = 0; i < tensor.Size.Length; i++)
                {
                    if (tensor.Stride[i] < 0) throw new OverflowException();
                    last = checked(last + (tensor.Size[i] - 1) * tensor.Stride[i]);
                }
            }
            catch (OverflowException)
            {
                last = long.MaxValue;
            }
            if (tensor.Offset < 0 || last >= tensor.Storage.Elements)
                throw Bad($"of size {TensorData.Shape(tensor.Size)} at offset {tensor.Offset} reads past its storage of {tensor.Storage.Elements:N0} elements");
        }
        return new StoredTensor(name, type, tensor.Size, () =>
        {
            using var data = record.Open();
            using var storage = TensorData.Read(data, [tensor.Storage.Elements], type);
            using var view = storage.as_strided(tensor.Size, tensor.Stride, tensor.Offset);
            return view.contiguous().clone();
        });
    }
}
