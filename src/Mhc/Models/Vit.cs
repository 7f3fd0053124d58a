using Mhc.Connections;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Models;

/// <summary>
/// Shape of a Vision Transformer classifier. JSON keys are the snake_case property names
/// (<c>image_size</c>, <c>patch_size</c>, …), under the run config's <c>vit</c> section.
/// </summary>
public sealed record VitConfig
{
    /// <summary>Input images are square, this many pixels a side.</summary>
    public int ImageSize { get; init; } = 32;

    /// <summary>Patch side; must divide the image size.</summary>
    public int PatchSize { get; init; } = 4;

    /// <summary>Image channels (3 = RGB).</summary>
    public int Channels { get; init; } = 3;

    /// <summary>Number of classes; set from the dataset when training.</summary>
    public int Classes { get; init; } = 8;

    /// <summary>Model width d.</summary>
    public int DModel { get; init; } = 128;

    /// <summary>Transformer blocks (two sub-layers each).</summary>
    public int Layers { get; init; } = 4;

    /// <summary>Attention heads.</summary>
    public int Heads { get; init; } = 4;

    /// <summary>SwiGLU hidden width; 0 = default.</summary>
    public int MlpHidden { get; init; }

    /// <summary>Dropout on attention weights and branch outputs while training.</summary>
    public double Dropout { get; init; }

    /// <summary><c>cls</c> (a learned class token) or <c>mean</c> (average of the patch tokens) feeds the head.</summary>
    public string Pooling { get; init; } = "cls";

    /// <summary>The residual scheme around every sub-layer.</summary>
    public ConnectionOptions Connection { get; init; } = new();

    /// <summary>Patches per image.</summary>
    public int Patches => ImageSize / PatchSize * (ImageSize / PatchSize);

    /// <summary>Sequence length the transformer sees (patches, plus the class token).</summary>
    public int Tokens => Patches + (Pooling == "cls" ? 1 : 0);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid value and its allowed range.</summary>
    public void Validate()
    {
        static void Require(bool ok, string key, object value, string range)
        {
            if (!ok) throw new ArgumentException($"vit.{key} = {value} is out of range: allowed {range}.", key);
        }
        Require(ImageSize is >= 1 and <= 4096, "image_size", ImageSize, "1..4096");
        Require(PatchSize >= 1 && ImageSize % PatchSize == 0, "patch_size", PatchSize, $"a divisor of image_size = {ImageSize}");
        Require(Channels >= 1, "channels", Channels, ">= 1");
        Require(Classes >= 2, "classes", Classes, ">= 2");
        Require(DModel is >= 2 and <= GptConfig.MaxWidth, "d_model", DModel, $"2..{GptConfig.MaxWidth}");
        Require(Layers is >= 1 and <= GptConfig.MaxLayers, "layers", Layers, $"1..{GptConfig.MaxLayers}");
        Require(Heads >= 1 && DModel % Heads == 0, "d_model", DModel, $"a multiple of heads = {Heads}");
        Require(MlpHidden is >= 0 and <= GptConfig.MaxWidth * 16, "mlp_hidden", MlpHidden, $"0..{GptConfig.MaxWidth * 16} (0 = default)");
        Require(Dropout is >= 0 and < 1, "dropout", Dropout, "[0, 1)");
        Require(Pooling is "cls" or "mean", "pooling", Pooling, "cls, mean");
        (Connection ?? throw new ArgumentException("vit.connection is missing.", "connection")).Validate();
        StreamEnds.CheckNetwork(Connection, DModel, Layers);
    }
}

/// <summary>
/// A Vision Transformer whose every sub-layer is wrapped by a <see cref="Connection"/>, with the same
/// blocks as <see cref="Gpt"/>: patch embedding (+ class token) + learned positions → <see cref="Streams.Expand"/>
/// → blocks of (attention, MLP), not causal → <see cref="Streams.Collapse"/> → RMSNorm → pooling → head.
/// </summary>
public sealed class Vit : nn.Module<Tensor, Tensor>, IStreamModel
{
    readonly PatchEmbedding patch_embedding;
    readonly Parameter? cls_token;
    readonly Parameter position_embedding;
    readonly ModuleList<TransformerBlock> blocks;
    readonly StreamEnds stream_ends;
    readonly RmsNorm final_norm;
    readonly LearnedExitHead? exit_head;
    readonly Linear head;

    /// <summary>Builds the model (normal 0.02 initialisation, output projections scaled by depth).</summary>
    /// <param name="config">Model shape; validated here.</param>
    public Vit(VitConfig config) : base("vit")
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        patch_embedding = new PatchEmbedding(config.Channels, config.PatchSize, config.DModel);
        using (no_grad())
        {
            if (config.Pooling == "cls") cls_token = new Parameter(randn(1, 1, config.DModel) * 0.02);
            position_embedding = new Parameter(randn(1, config.Tokens, config.DModel) * 0.02);
        }
        var connection = StreamEnds.ForNetwork(config.Connection, config.Layers);
        stream_ends = StreamEnds.Create(connection, config.DModel);
        blocks = new ModuleList<TransformerBlock>(Enumerable.Range(0, config.Layers)
            .Select(b => new TransformerBlock(b, config.Layers, config.DModel, config.Heads, config.MlpHidden,
                causal: false, maxPositions: 0, config.Dropout, connection))
            .ToArray());
        final_norm = new RmsNorm(config.DModel);
        if (config.Connection.ExitHead == ExitHead.Learned)
            exit_head = new LearnedExitHead(config.Connection.Streams, config.DModel, config.Connection.GateInit);
        head = nn.Linear(config.DModel, config.Classes);
        using (no_grad())
        {
            head.weight!.normal_(0, 0.02);
            head.bias!.zero_();
        }
        RegisterComponents();
    }

    /// <summary>The configuration this model was built from.</summary>
    public VitConfig Config { get; }

    /// <summary>Every sub-layer's connection in order.</summary>
    public IReadOnlyList<Connection> Connections => blocks.SelectMany(b => new[] { b.Attention, b.Mlp }).ToList();

    /// <summary>Class logits <c>[B, classes]</c> for images <c>[B, C, H, W]</c>.</summary>
    /// <param name="images">Normalised images.</param>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var x = ConnectionChain.Forward(Connections, Embed(images));
        var h = final_norm.call(exit_head?.call(x) ?? stream_ends.Collapse(x));   // [B, T, d]
        var pooled = Config.Pooling == "cls" ? h.select(1, 0) : h.mean([1]);
        return head.call(pooled).MoveToOuterDisposeScope();
    }

    /// <summary>The stream state entering every sub-layer, then the final state: 2·layers + 1 tensors <c>[B, T, n, d]</c>.</summary>
    /// <param name="input">Images <c>[B, C, H, W]</c>.</param>
    public IReadOnlyList<Tensor> StreamStates(Tensor input) => ConnectionChain.States(Connections, Embed(input));

    Tensor Embed(Tensor images)
    {
        var c = Config;
        if (images.dim() != 4 || images.size(1) != c.Channels || images.size(2) != c.ImageSize || images.size(3) != c.ImageSize)
            throw new ArgumentException($"Vit expects images [B, {c.Channels}, {c.ImageSize}, {c.ImageSize}]; got [{string.Join(", ", images.shape)}].", nameof(images));
        using var scope = NewDisposeScope();
        var tokens = patch_embedding.call(images);                      // [B, P, d]
        if (cls_token is not null) tokens = cat([cls_token.expand(images.size(0), 1, c.DModel), tokens], 1);
        var h = tokens + position_embedding;                             // [B, T, d]
        return stream_ends.Expand(h).MoveToOuterDisposeScope();
    }
}
