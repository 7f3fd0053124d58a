using Mhc.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Interop;

/// <summary>How <see cref="ModelWeights.Save"/> writes a model.</summary>
public sealed record WeightFileOptions
{
    /// <summary>The names the tensors take (default <see cref="WeightLayout.Hf"/>).</summary>
    public WeightLayout Layout { get; init; } = WeightLayout.Hf;

    /// <summary>The file format; null = from the file name (<c>.safetensors</c>, <c>.pt</c>), else safetensors.</summary>
    public WeightFormat? Format { get; init; }

    /// <summary>Element type of the exported tensors (default float32). Connection parameters stay float32.</summary>
    public WeightPrecision Precision { get; init; } = WeightPrecision.F32;
}

/// <summary>What a weight file holds, as read by <see cref="ModelWeights.Open"/>: its format, layout, metadata and tensors.</summary>
/// <param name="Path">The file.</param>
/// <param name="Format">safetensors or a PyTorch state_dict file.</param>
/// <param name="Layout">The layout its names follow (from its metadata, else from its names).</param>
/// <param name="Metadata">The safetensors <c>__metadata__</c> (empty for PyTorch files, which have none).</param>
/// <param name="Tensors">Every tensor's name and shape, in file order.</param>
public sealed record WeightFileInfo(string Path, WeightFormat Format, WeightLayout Layout, IReadOnlyDictionary<string, string> Metadata,
    IReadOnlyList<(string Name, long[] Shape)> Tensors);

/// <summary>
/// A model's weights in and out of files: safetensors and PyTorch state_dict files, in our names or in Llama's and
/// DeepSeek-V4's (<see cref="WeightLayout"/>). Loading is strict: every tensor the model has must be in the file with its
/// exact shape and a floating-point type, and nothing else may be; otherwise nothing is loaded and a
/// <see cref="WeightFileException"/> names the tensor.
/// </summary>
public static class ModelWeights
{
    /// <summary>Metadata key of the writer's format version.</summary>
    public const string FormatVersionKey = "mhcnet.format_version";

    /// <summary>Metadata key of the layout the names follow.</summary>
    public const string LayoutKey = "mhcnet.layout";

    /// <summary>Metadata key under which callers store the model's configuration (JSON).</summary>
    public const string ConfigKey = "mhcnet.config";

    /// <summary>The format version this code writes.</summary>
    public const string FormatVersion = "1";

    /// <summary>Writes the parameters of <paramref name="model"/> (a <see cref="Models.Gpt"/> or <see cref="Models.Vit"/>) to <paramref name="path"/>.</summary>
    /// <param name="model">The model.</param>
    /// <param name="path">Target file; replaced atomically.</param>
    /// <param name="options">Layout, format and precision.</param>
    /// <param name="metadata">Extra safetensors metadata (e.g. <see cref="ConfigKey"/>); PyTorch files carry none.</param>
    public static void Save(nn.Module model, string path, WeightFileOptions options, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        var format = options.Format ?? WeightNames.FormatOf(path) ?? WeightFormat.Safetensors;
        var lower = options.Precision switch
        {
            WeightPrecision.BF16 => ScalarType.BFloat16,
            WeightPrecision.F16 => ScalarType.Float16,
            _ => (ScalarType?)null,
        };
        using var scope = NewDisposeScope();
        var tensors = LayoutMap.Of(model, options.Layout)
            .Select(e => (e.Name, Tensor: lower is { } type && !e.Connection ? e.Export().to(type) : e.Export()))
            .ToList();
        var all = new Dictionary<string, string>
        {
            ["format"] = "pt",   // what Hugging Face tools expect of PyTorch weights
            [FormatVersionKey] = FormatVersion,
            [LayoutKey] = options.Layout.Name(),
        };
        foreach (var (key, value) in metadata ?? new Dictionary<string, string>()) all[key] = value;
        AtomicFile.Write(path, stream =>
        {
            if (format == WeightFormat.Safetensors) Safetensors.Write(stream, tensors, all);
            else PyTorchFile.Write(stream, tensors);
        });
    }

    /// <summary>Reads the index of a weight file (names, shapes, metadata) without its data.</summary>
    /// <param name="path">A safetensors or PyTorch state_dict file.</param>
    public static WeightFileInfo Open(string path)
    {
        using var file = Read(path);
        return file.Info;
    }

    /// <summary>
    /// Loads <paramref name="path"/> into <paramref name="model"/>. Every tensor is checked (name, shape, type) and
    /// read before any parameter is written, so a bad file changes nothing.
    /// </summary>
    /// <param name="model">A model of the file's architecture.</param>
    /// <param name="path">A safetensors or PyTorch state_dict file in either layout.</param>
    public static WeightFileInfo Load(nn.Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var file = Read(path);
        var info = file.Info;
        var expected = LayoutMap.Of(model, info.Layout);
        var stored = file.Tensors.ToDictionary(t => t.Name);
        var where = $"weight file '{path}' ({info.Layout.Name()} layout)";
        foreach (var entry in expected)
        {
            if (!stored.TryGetValue(entry.Name, out var tensor))
                throw new WeightFileException($"{where} has no tensor '{entry.Name}'; the model needs it with shape {TensorData.Shape(entry.Shape)}.");
            if (!tensor.Shape.SequenceEqual(entry.Shape))
                throw new WeightFileException($"{where}: tensor '{entry.Name}' has shape {TensorData.Shape(tensor.Shape)}; the model expects {TensorData.Shape(entry.Shape)}.");
            if (tensor.Type is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float64))
                throw new WeightFileException($"{where}: tensor '{entry.Name}' is of type {tensor.Type}; the model expects floating-point values (F32, F16, BF16 or F64).");
        }
        var names = expected.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        if (file.Tensors.FirstOrDefault(t => !names.Contains(t.Name)) is { } extra)
            throw new WeightFileException($"{where} has tensor '{extra.Name}' {TensorData.Shape(extra.Shape)}, which this model does not have.");
        using var scope = NewDisposeScope();
        var values = expected.Select(e => stored[e.Name].Read()).ToList();   // everything read before anything is written
        for (var i = 0; i < expected.Count; i++) expected[i].Import(values[i]);
        return info;
    }

    static WeightFileReader Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new WeightFileException(Directory.Exists(path) ? $"weight file '{path}' is a directory." : $"weight file '{path}' does not exist.");
        return new WeightFileReader(path);
    }

    /// <summary>An open weight file: the stream stays open while its tensors may be read.</summary>
    sealed class WeightFileReader : IDisposable
    {
        readonly FileStream stream;

        public WeightFileReader(string path)
        {
            stream = File.OpenRead(path);
            try
            {
                Span<byte> magic = stackalloc byte[4];
                var zip = stream.Read(magic) == 4 && magic.SequenceEqual("PK\u0003\u0004"u8);
                stream.Position = 0;
                IReadOnlyDictionary<string, string> metadata = new Dictionary<string, string>();
                if (zip) Tensors = PyTorchFile.Read(stream);
                else (Tensors, metadata) = Safetensors.Read(stream);
                var layout = metadata.TryGetValue(LayoutKey, out var name) ? WeightNames.ParseLayout(name)
                    : Tensors.Any(t => t.Name.StartsWith("model.", StringComparison.Ordinal)) ? WeightLayout.Hf : WeightLayout.MhcNet;
                Info = new WeightFileInfo(path, zip ? WeightFormat.PyTorch : WeightFormat.Safetensors, layout, metadata,
                    Tensors.Select(t => (t.Name, t.Shape)).ToList());
            }
            catch (Exception e) when (e is ArgumentException or EndOfStreamException)
            {
                stream.Dispose();
                throw new WeightFileException($"weight file '{path}' cannot be read: {e.Message}", e);
            }
            catch
            {
                stream.Dispose();
                throw;
            }
        }

        public IReadOnlyList<StoredTensor> Tensors { get; }

        public WeightFileInfo Info { get; }

        public void Dispose() => stream.Dispose();
    }
}
