using Mhc.Connections;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Models;

/// <summary>
/// Shape of a GPT-style decoder. Defaults are a small model that trains in minutes on two CPU cores.
/// JSON keys are the snake_case property names (<c>d_model</c>, <c>seq_len</c>, …).
/// </summary>
public sealed record GptConfig
{
    /// <summary>Token ids 0..vocab_size−1; set from the tokenizer when training.</summary>
    public int VocabSize { get; init; } = 256;

    /// <summary>Model width d.</summary>
    public int DModel { get; init; } = 128;

    /// <summary>Transformer blocks; each has two sub-layers (attention, MLP), so 2·layers connections.</summary>
    public int Layers { get; init; } = 4;

    /// <summary>Attention heads; must divide d_model into an even head width (rotary positions).</summary>
    public int Heads { get; init; } = 4;

    /// <summary>Context length in tokens.</summary>
    public int SeqLen { get; init; } = 128;

    /// <summary>SwiGLU hidden width; 0 = 8·d/3 rounded up to a multiple of 8 (a 4d MLP's parameter count).</summary>
    public int MlpHidden { get; init; }

    /// <summary>Dropout on attention weights and branch outputs while training.</summary>
    public double Dropout { get; init; }

    /// <summary>Share the output head with the token embedding (GPT-2 style).</summary>
    public bool TieEmbeddings { get; init; } = true;

    /// <summary>The residual scheme around every sub-layer.</summary>
    public ConnectionOptions Connection { get; init; } = new();

    // Bounds no machine can hold past (and that keep sizes inside int arithmetic); what fits this machine is TrainingMemory's question.
    internal const int MaxVocab = 16_777_216, MaxWidth = 65_536, MaxLayers = 4_096, MaxSeqLen = 1_048_576;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid value and its allowed range.</summary>
    public void Validate()
    {
        static void Require(bool ok, string key, object value, string range)
        {
            if (!ok) throw new ArgumentException($"model.{key} = {value} is out of range: allowed {range}.", key);
        }
        Require(VocabSize is >= 2 and <= MaxVocab, "vocab_size", VocabSize, $"2..{MaxVocab}");
        Require(DModel is >= 2 and <= MaxWidth, "d_model", DModel, $"2..{MaxWidth}");
        Require(Layers is >= 1 and <= MaxLayers, "layers", Layers, $"1..{MaxLayers}");
        Require(Heads >= 1, "heads", Heads, ">= 1");
        Require(DModel % Heads == 0, "d_model", DModel, $"a multiple of heads = {Heads}");
        Require(DModel / Heads % 2 == 0, "heads", Heads, $"a count giving an even head width (d_model / heads = {DModel / Heads})");
        Require(SeqLen is >= 1 and <= MaxSeqLen, "seq_len", SeqLen, $"1..{MaxSeqLen}");
        Require(MlpHidden is >= 0 and <= MaxWidth * 16, "mlp_hidden", MlpHidden, $"0..{MaxWidth * 16} (0 = default)");
        Require(Dropout is >= 0 and < 1, "dropout", Dropout, "[0, 1)");
        (Connection ?? throw new ArgumentException("model.connection is missing.", "connection")).Validate();
        StreamEnds.CheckNetwork(Connection, DModel, Layers);
    }
}

/// <summary>
/// A GPT-style language model whose every sub-layer is wrapped by a <see cref="Connection"/>:
/// token embedding → <see cref="Streams.Expand"/> → blocks of (attention, MLP) → <see cref="Streams.Collapse"/> (or the learned exit head, <see cref="ExitHead"/>)
/// → RMSNorm → head. Attention is causal with rotary positions; the MLP is SwiGLU; each branch keeps its
/// own pre-norm. With the residual kind this is exactly a Pre-Norm transformer.
/// </summary>
public sealed class Gpt : nn.Module<Tensor, Tensor>, IStreamModel
{
    readonly Embedding token_embedding;
    readonly ModuleList<TransformerBlock> blocks;
    readonly StreamEnds stream_ends;
    readonly RmsNorm final_norm;
    readonly LearnedExitHead? exit_head;
    readonly Linear? head;

    /// <summary>Builds the model with GPT-2 style initialisation (normal 0.02, output projections scaled by depth).</summary>
    /// <param name="config">Model shape; validated here.</param>
    public Gpt(GptConfig config) : base("gpt")
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        token_embedding = nn.Embedding(config.VocabSize, config.DModel);
        using (no_grad()) token_embedding.weight!.normal_(0, 0.02);
        var connection = StreamEnds.ForNetwork(config.Connection, config.Layers);
        stream_ends = StreamEnds.Create(connection, config.DModel);
        blocks = new ModuleList<TransformerBlock>(Enumerable.Range(0, config.Layers)
            .Select(b => new TransformerBlock(b, config.Layers, config.DModel, config.Heads, config.MlpHidden,
                causal: true, maxPositions: config.SeqLen, config.Dropout, connection))
            .ToArray());
        final_norm = new RmsNorm(config.DModel);
        if (config.Connection.ExitHead == ExitHead.Learned)
            exit_head = new LearnedExitHead(config.Connection.Streams, config.DModel, config.Connection.GateInit);
        if (!config.TieEmbeddings)
        {
            head = nn.Linear(config.DModel, config.VocabSize, hasBias: false);
            using (no_grad()) head.weight!.normal_(0, 0.02);
        }
        RegisterComponents();
    }

    /// <summary>The configuration this model was built from.</summary>
    public GptConfig Config { get; }

    /// <summary>Every sub-layer's connection in order (attention of block 0, MLP of block 0, …).</summary>
    public IReadOnlyList<Connection> Connections => blocks.SelectMany(b => new[] { b.Attention, b.Mlp }).ToList();

    /// <summary>Next-token logits <c>[B, T, vocab]</c> for token ids <c>[B, T]</c> (T ≤ seq_len).</summary>
    /// <param name="ids">Token ids, int64.</param>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        return Head(Hidden(ids)).MoveToOuterDisposeScope();
    }

    // Logits [..., vocab] of final-normed hidden states [..., d].
    Tensor Head(Tensor h) => head is null ? h.matmul(token_embedding.weight!.t()) : head.call(h);

    /// <summary>
    /// Mean cross-entropy of predicting <paramref name="targets"/> from <paramref name="ids"/>, computed with the head
    /// without the whole <c>[B·T, vocab]</c> logits (<see cref="LinearCrossEntropy"/>): the same value as the cross-entropy
    /// of <see cref="forward"/>'s logits.
    /// </summary>
    /// <param name="ids">Inputs <c>[B, T]</c>.</param>
    /// <param name="targets">Next tokens <c>[B, T]</c>.</param>
    public Tensor Loss(Tensor ids, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(targets);
        using var scope = NewDisposeScope();
        var h = Hidden(ids);
        return LinearCrossEntropy.Mean(h.flatten(0, 1), head?.weight ?? token_embedding.weight!, targets.flatten()).MoveToOuterDisposeScope();
    }

    // The final-normed hidden state [B, T, d]: everything but the head.
    Tensor Hidden(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var x = ConnectionChain.Forward(Connections, Embed(ids));   // one chain, so recomputation segments can span blocks
        return final_norm.call(exit_head?.call(x) ?? stream_ends.Collapse(x)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The stream state entering every sub-layer, then the final state: 2·layers + 1 tensors
    /// <c>[B, T, n, d]</c>. What the diagnostics read coefficients and similarities from.
    /// </summary>
    /// <param name="input">Token ids <c>[B, T]</c>.</param>
    public IReadOnlyList<Tensor> StreamStates(Tensor input) => ConnectionChain.States(Connections, Embed(input));

    /// <summary>
    /// Samples <paramref name="count"/> tokens after <paramref name="prompt"/>; the context is the last seq_len tokens. With
    /// <paramref name="useCache"/> (the default) each attention layer keeps the keys and values it has computed, so while
    /// the context grows every new token runs each sub-layer on that token only. Once it is full, each new token shifts
    /// the window, and every token's state changes with what it can see: the context is computed again, so both paths
    /// give the same tokens.
    /// </summary>
    /// <param name="prompt">Prompt ids (at least one).</param>
    /// <param name="count">Tokens to generate.</param>
    /// <param name="temperature">Softmax temperature; 0 = greedy.</param>
    /// <param name="topK">Keep the k most likely tokens (0 = all).</param>
    /// <param name="generator">Random source, for reproducible samples.</param>
    /// <param name="useCache">Keep keys and values instead of recomputing the context.</param>
    /// <param name="onToken">Receives each token as soon as it is chosen (to stream long generations).</param>
    public List<int> Generate(IReadOnlyList<int> prompt, int count, double temperature, int topK, Generator generator, bool useCache = true,
        Action<int>? onToken = null)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Count == 0) throw new ArgumentException("The prompt must contain at least one token.", nameof(prompt));
        if (count < 0) throw new ArgumentException($"count = {count} is out of range: allowed >= 0.", nameof(count));
        if (count == 0) return [];
        var ids = prompt.ToList();
        var device = token_embedding.weight!.device;
        using var _ = no_grad();
        var attention = blocks.Select(b => (SelfAttention)b.Attention.Branch).ToList();
        void Reset()
        {
            foreach (var a in attention)
            {
                a.Cache?.Dispose();
                a.Cache = useCache ? new KeyValueCache(Config.SeqLen) : null;
            }
        }
        // The next token's logits [vocab]: the head runs on the last position only (over a whole window at a 50,257-token
        // vocabulary it would be most of the token's time).
        Tensor Last(IEnumerable<int> tokens)
        {
            var context = tokens.Select(t => (long)t).ToArray();
            using var scope = NewDisposeScope();
            using var input = tensor(context, [1, context.Length], device: device);
            return Head(Hidden(input)[0, -1]).MoveToOuterDisposeScope();
        }
        Tensor Window()
        {
            Reset();
            return Last(ids.Skip(Math.Max(0, ids.Count - Config.SeqLen)));
        }
        try
        {
            var next = Window();
            for (var i = 0; i < count; i++)
            {
                var token = Pick(next, temperature, topK, generator);
                next.Dispose();
                ids.Add(token);
                onToken?.Invoke(token);
                if (i + 1 == count) break;
                // The new token extends the context while it fits; past the edge the window moves and is computed again.
                next = useCache && ids.Count <= Config.SeqLen ? Last([token]) : Window();
            }
            return ids.Skip(prompt.Count).ToList();
        }
        finally
        {
            foreach (var a in attention)
            {
                a.Cache?.Dispose();
                a.Cache = null;
            }
        }
    }

    static int Pick(Tensor logits, double temperature, int topK, Generator generator)
    {
        using var scope = NewDisposeScope();
        if (temperature <= 0) return (int)logits.argmax().item<long>();
        logits = logits / temperature;
        if (topK > 0 && topK < logits.size(0))
        {
            var threshold = logits.topk(topK).values[-1];
            logits = logits.masked_fill(logits < threshold, double.NegativeInfinity);
        }
        return (int)logits.softmax(-1).multinomial(1, generator: generator).item<long>();
    }

    Tensor Embed(Tensor ids)
    {
        if (ids.dim() != 2 || ids.size(1) > Config.SeqLen)
            throw new ArgumentException($"Gpt expects token ids [B, T] with T <= seq_len = {Config.SeqLen}; got [{string.Join(", ", ids.shape)}].", nameof(ids));
        using var h = token_embedding.call(ids);                     // [B, T, d]
        return stream_ends.Expand(h);                                  // [B, T, n, d]
    }
}
