using Mhc.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Cli.Benchmarks;

/// <summary>
/// The benchmark's baseline: the GPT of <see cref="Gpt"/> with no connection modules at all, <c>x + F(x)</c> written
/// directly on <c>[B, T, d]</c>, with the same branches and initialisation. Beside it the residual kind shows what its
/// connection costs (it should cost nothing).
/// </summary>
sealed class PlainGpt : nn.Module<Tensor, Tensor>
{
    readonly Embedding token_embedding;
    readonly ModuleList<nn.Module<Tensor, Tensor>> branches;
    readonly RmsNorm final_norm;

    public PlainGpt(GptConfig config) : base("plain_gpt")
    {
        config.Validate();
        token_embedding = nn.Embedding(config.VocabSize, config.DModel);
        using (no_grad()) token_embedding.weight!.normal_(0, 0.02);
        branches = new ModuleList<nn.Module<Tensor, Tensor>>(Enumerable.Range(0, config.Layers)
            .Select(_ => TransformerBlock.Branches(config.Layers, config.DModel, config.Heads, config.MlpHidden, causal: true, config.SeqLen, config.Dropout))
            .SelectMany(b => new nn.Module<Tensor, Tensor>[] { b.Attention, b.Mlp })
            .ToArray());
        final_norm = new RmsNorm(config.DModel);
        RegisterComponents();
    }

    /// <summary>Next-token logits <c>[B, T, vocab]</c> (head tied to the embedding).</summary>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        return Hidden(ids).matmul(token_embedding.weight!.t()).MoveToOuterDisposeScope();
    }

    /// <summary>The training loss as <see cref="Gpt.Loss"/> computes it (head and loss in one).</summary>
    public Tensor Loss(Tensor ids, Tensor targets)
    {
        using var scope = NewDisposeScope();
        return LinearCrossEntropy.Mean(Hidden(ids).flatten(0, 1), token_embedding.weight!, targets.flatten()).MoveToOuterDisposeScope();
    }

    Tensor Hidden(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var x = token_embedding.call(ids);
        foreach (var branch in branches) x = x + branch.call(x);
        return final_norm.call(x).MoveToOuterDisposeScope();
    }
}
