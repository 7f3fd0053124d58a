using Mhc.Models;
using Mhc.Training;
using static TorchSharp.torch;

namespace Mhc.Tests;

public class WeightDecayPolicyTests
{
    [Theory]
    [InlineData(Connections.ConnectionKind.Manifold)]
    [InlineData(Connections.ConnectionKind.HyperDynamic)]
    public void Only_weight_matrices_are_decayed(Connections.ConnectionKind kind)
    {
        using var model = new Gpt(new GptConfig { DModel = 16, Heads = 2, Layers = 1, SeqLen = 8, VocabSize = 32, Connection = new() { Kind = kind } });
        var (decayedParameters, notDecayed) = WeightDecayPolicy.Split(model);
        var names = model.named_parameters().ToDictionary(p => (object)p.parameter, p => p.name, ReferenceEqualityComparer.Instance);
        var decayed = decayedParameters.Select(p => names[p]).ToHashSet();
        Assert.Equal(names.Count, decayedParameters.Count + notDecayed.Count);
        var expected = new HashSet<string>
        {
            "token_embedding.weight",
            "blocks.0.attn_conn.branch.qkv.weight", "blocks.0.attn_conn.branch.proj.weight",
            "blocks.0.mlp_conn.branch.gate.weight", "blocks.0.mlp_conn.branch.up.weight", "blocks.0.mlp_conn.branch.down.weight",
        };
        foreach (var conn in new[] { "attn_conn", "mlp_conn" })
            expected.Add(kind == Connections.ConnectionKind.Manifold ? $"blocks.0.{conn}.phi" : $"blocks.0.{conn}.dynamic_alpha");
        Assert.Equal(expected.Order(), decayed.Order());
        // The spec's exclusions are present and not decayed.
        var excluded = kind == Connections.ConnectionKind.Manifold
            ? new[] { "blocks.0.attn_conn.bias_res", "blocks.0.attn_conn.alpha_res", "blocks.0.attn_conn.branch.norm.weight" }
            : new[] { "blocks.0.attn_conn.static_alpha", "blocks.0.attn_conn.static_beta", "blocks.0.attn_conn.alpha_scale" };
        Assert.All(excluded, e => Assert.Contains(e, names.Values));
    }
}
