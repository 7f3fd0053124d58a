using System.Text.RegularExpressions;
using Mhc.Connections;
using Mhc.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mhc.Interop;

/// <summary>One tensor of a layout: its name, its shape, how it is made from the model and written back into it.</summary>
/// <param name="Name">Name in the file.</param>
/// <param name="Shape">Shape in the file.</param>
/// <param name="Export">A new CPU tensor with the value (float32 or the parameter's type).</param>
/// <param name="Import">Writes a value of <paramref name="Shape"/> into the model's parameters.</param>
/// <param name="Connection">A connection's parameter: kept float32 when the rest is exported in lower precision.</param>
sealed record LayoutEntry(string Name, long[] Shape, Func<Tensor> Export, Action<Tensor> Import, bool Connection);

/// <summary>
/// Every tensor of a model in one <see cref="WeightLayout"/>. The model is read through its parameter names
/// (<c>blocks.{b}.attn_conn.branch.qkv.weight</c>…) and its connections, so a GPT and a ViT share the body's rules.
/// </summary>
static partial class LayoutMap
{
    static readonly string[] Projections = ["q", "k", "v"];

    [GeneratedRegex(@"^blocks\.(\d+)\.(attn|mlp)_conn\.(.+)$")]
    private static partial Regex SublayerParameter();

    /// <summary>The entries of <paramref name="model"/> in <paramref name="layout"/>, in the model's parameter order.</summary>
    public static List<LayoutEntry> Of(nn.Module model, WeightLayout layout)
    {
        var vision = model is Vit;
        var connections = model.named_modules().Where(m => m.module is Connection).ToDictionary(m => m.name, m => (Connection)m.module);
        var entries = new List<LayoutEntry>();
        var mappedConnections = new HashSet<string>();
        foreach (var (name, parameter) in model.named_parameters())
        {
            var match = SublayerParameter().Match(name);
            var ownerName = match.Success ? $"blocks.{match.Groups[1].Value}.{match.Groups[2].Value}_conn" : null;
            var isConnectionParameter = match.Success && !match.Groups[3].Value.StartsWith("branch.", StringComparison.Ordinal);
            var isExitHead = name.StartsWith(ExitHeadPrefix, StringComparison.Ordinal);
            if (layout == WeightLayout.MhcNet)
            {
                entries.Add(Same(name, parameter, isConnectionParameter || isExitHead));
                continue;
            }
            if (isExitHead)
            {
                entries.Add(HcHead(name[ExitHeadPrefix.Length..], parameter));
                continue;
            }
            if (!match.Success)
            {
                entries.Add(Same(HfName(name, vision), parameter, connection: false));
                continue;
            }
            var (block, sublayer, rest) = (match.Groups[1].Value, match.Groups[2].Value, match.Groups[3].Value);
            var prefix = $"model.layers.{block}";
            if (!isConnectionParameter)
            {
                if (rest == "branch.qkv.weight")
                {
                    var d = parameter.size(1);
                    entries.AddRange(Projections.Select((p, i) => Rows($"{prefix}.self_attn.{p}_proj.weight", parameter, i * d, d)));
                }
                else entries.Add(Same($"{prefix}.{BranchName(sublayer, rest[7..])}", parameter, connection: false));
                continue;
            }
            var hc = $"{prefix}.{(sublayer == "attn" ? "attn_hc" : "ffn_hc")}";
            if (connections[ownerName!] is ManifoldHyperConnection manifold)
            {
                if (mappedConnections.Add(ownerName!)) entries.AddRange(DeepSeek(hc, manifold));
            }
            else entries.Add(Same($"{hc}.{rest}", parameter, connection: true));
        }
        return entries;
    }

    // Llama's names for a branch's parameters (the part after "branch.").
    static string BranchName(string sublayer, string parameter) => (sublayer, parameter) switch
    {
        ("attn", "norm.weight") => "input_layernorm.weight",
        ("attn", "proj.weight") => "self_attn.o_proj.weight",
        ("mlp", "norm.weight") => "post_attention_layernorm.weight",
        ("mlp", "gate.weight") => "mlp.gate_proj.weight",
        ("mlp", "up.weight") => "mlp.up_proj.weight",
        ("mlp", "down.weight") => "mlp.down_proj.weight",
        _ => throw new InvalidOperationException($"no hf name for the {sublayer} branch's parameter '{parameter}'."),
    };

    // Parameters outside the blocks: GPT (embedding, final norm, untied head) and ViT (patches, positions, classifier); RMT's
    // and MUDDFormer's stream ends have no Llama name and keep their own under model. (docs/interop.md).
    static string HfName(string name, bool vision) => name switch
    {
        _ when name.StartsWith("stream_ends.", StringComparison.Ordinal) => $"model.{name}",
        "token_embedding.weight" => "model.embed_tokens.weight",
        "final_norm.weight" => "model.norm.weight",
        "head.weight" when !vision => "lm_head.weight",
        "head.weight" => "classifier.weight",
        "head.bias" => "classifier.bias",
        "patch_embedding.proj.weight" => "model.patch_embed.weight",
        "patch_embedding.proj.bias" => "model.patch_embed.bias",
        "cls_token" => "model.cls_token",
        "position_embedding" => "model.pos_embed",
        _ => throw new InvalidOperationException($"no hf name for the parameter '{name}'."),
    };

    const string ExitHeadPrefix = "exit_head.";

    // DeepSeek-V4's hc_head: fn [n, n·d] = φᵀ, base [n] = b, scale [1] = α (a scalar here).
    static LayoutEntry HcHead(string parameterName, Tensor parameter) => parameterName switch
    {
        "phi" => new("model.hc_head.fn", [parameter.size(1), parameter.size(0)], () => Copy(parameter.t()), value => Assign(parameter, value.t()), true),
        "bias" => Same("model.hc_head.base", parameter, connection: true),
        "alpha" => new("model.hc_head.scale", [1], () => Copy(parameter.reshape(1)), value => Assign(parameter, value.reshape(parameter.shape)), true),
        _ => throw new InvalidOperationException($"no hf name for the exit head's parameter '{parameterName}'."),
    };

    static LayoutEntry Same(string name, Tensor parameter, bool connection) =>
        new(name, parameter.shape, () => Copy(parameter), value => Assign(parameter, value), connection);

    static LayoutEntry Rows(string name, Tensor parameter, long start, long count) =>
        new(name, [count, parameter.size(1)], () => Copy(parameter.narrow(0, start, count)), value => Assign(parameter.narrow(0, start, count), value), false);

    static IEnumerable<LayoutEntry> DeepSeek(string prefix, ManifoldHyperConnection connection)
    {
        var (width, nd) = (DeepSeekLayout.Width(connection.Streams), connection.Streams * connection.DModel);
        yield return new LayoutEntry($"{prefix}.fn", [width, nd], () => DeepSeekLayout.Fn(connection), value => DeepSeekLayout.SetFn(connection, value), true);
        yield return new LayoutEntry($"{prefix}.base", [width], () => DeepSeekLayout.Base(connection), value => DeepSeekLayout.SetBase(connection, value), true);
        yield return new LayoutEntry($"{prefix}.scale", [3], () => DeepSeekLayout.Scale(connection), value => DeepSeekLayout.SetScale(connection, value), true);
    }

    internal static Tensor Copy(Tensor value)
    {
        using var _ = no_grad();
        return value.detach().cpu().contiguous().clone();
    }

    internal static void Assign(Tensor parameter, Tensor value)
    {
        using var _ = no_grad();
        using var converted = value.to(parameter.dtype, parameter.device);
        parameter.copy_(converted);
    }
}
