namespace Mhc.Interop;

/// <summary>The names (and arrangement) a model's parameters take in a weight file (docs/interop.md has the full table).</summary>
public enum WeightLayout
{
    /// <summary>
    /// Llama's names for the transformer body (<c>model.layers.{i}.self_attn.q_proj.weight</c>, …) and DeepSeek-V4's for
    /// every mHC connection (<c>model.layers.{i}.attn_hc.{fn,base,scale}</c>); kinds DeepSeek has no layout for keep
    /// our parameter names under the same prefix.
    /// </summary>
    Hf,

    /// <summary>Our own names, exactly what the model's <c>state_dict()</c> holds (<c>blocks.3.attn_conn.phi</c>).</summary>
    MhcNet,
}

/// <summary>The file format of a weight file.</summary>
public enum WeightFormat
{
    /// <summary>safetensors: a JSON header (with metadata) and raw data.</summary>
    Safetensors,

    /// <summary>A PyTorch state_dict file, as <c>torch.save(model.state_dict())</c> writes it (no metadata).</summary>
    PyTorch,
}

/// <summary>The element type of exported weights. Connection parameters stay float32 (their math is float32 always).</summary>
public enum WeightPrecision
{
    /// <summary>float32: loads back bit for bit.</summary>
    F32,

    /// <summary>bfloat16.</summary>
    BF16,

    /// <summary>float16.</summary>
    F16,
}

/// <summary>The short names used on the command line and in metadata.</summary>
public static class WeightNames
{
    /// <summary><c>hf</c> or <c>mhcnet</c>.</summary>
    public static string Name(this WeightLayout layout) => layout == WeightLayout.Hf ? "hf" : "mhcnet";

    /// <summary><c>safetensors</c> or <c>pt</c>.</summary>
    public static string Name(this WeightFormat format) => format == WeightFormat.Safetensors ? "safetensors" : "pt";

    /// <summary><c>f32</c>, <c>bf16</c> or <c>f16</c>.</summary>
    public static string Name(this WeightPrecision precision) => precision switch
    {
        WeightPrecision.BF16 => "bf16",
        WeightPrecision.F16 => "f16",
        _ => "f32",
    };

    /// <summary>The layout called <paramref name="name"/>.</summary>
    public static WeightLayout ParseLayout(string name) => name switch
    {
        "hf" => WeightLayout.Hf,
        "mhcnet" => WeightLayout.MhcNet,
        _ => throw new ArgumentException($"layout = '{name}' is unknown: allowed hf, mhcnet.", nameof(name)),
    };

    /// <summary>The format called <paramref name="name"/>.</summary>
    public static WeightFormat ParseFormat(string name) => name switch
    {
        "safetensors" => WeightFormat.Safetensors,
        "pt" => WeightFormat.PyTorch,
        _ => throw new ArgumentException($"format = '{name}' is unknown: allowed safetensors, pt.", nameof(name)),
    };

    /// <summary>The precision called <paramref name="name"/>.</summary>
    public static WeightPrecision ParsePrecision(string name) => name switch
    {
        "f32" => WeightPrecision.F32,
        "bf16" => WeightPrecision.BF16,
        "f16" => WeightPrecision.F16,
        _ => throw new ArgumentException($"dtype = '{name}' is unknown: allowed f32, bf16, f16.", nameof(name)),
    };

    /// <summary>The format a file name implies: <c>.safetensors</c>, or <c>.pt</c> / <c>.pth</c> / <c>.bin</c>; null otherwise.</summary>
    public static WeightFormat? FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".safetensors" => WeightFormat.Safetensors,
        ".pt" or ".pth" or ".bin" => WeightFormat.PyTorch,
        _ => null,
    };
}
