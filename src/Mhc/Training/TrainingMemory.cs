using System.Globalization;
using Mhc.Models;

namespace Mhc.Training;

/// <summary>
/// A rough lower bound of the memory a training run needs (float32 weights, gradients and AdamW's two moments, the
/// activations kept for backward, the logits, the built-in data set), so sizes no machine can hold are refused up
/// front naming the setting to reduce, instead of failing inside libtorch.
/// </summary>
static class TrainingMemory
{
    const double Float = 4;

    /// <summary>Estimated bytes of training <paramref name="config"/> (validated).</summary>
    public static double Estimate(RunConfig config) => Sizes(config).Sum(s => s.Bytes);

    /// <summary>Throws <see cref="ArgumentException"/> naming the setting that matters most when the estimate exceeds <paramref name="available"/> bytes.</summary>
    /// <param name="config">A validated run configuration.</param>
    /// <param name="available">Memory the process may use (default: what the runtime reports for this machine or container).</param>
    public static void EnsureFits(RunConfig config, long? available = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var limit = available ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        var estimate = Estimate(config);
        if (estimate <= limit) return;
        // The setting whose halving saves the most is the one to name.
        var (key, value, _) = Settings(config).MaxBy(s => estimate - Estimate(s.Halved));
        var parts = string.Join(", ", Sizes(config).Where(s => s.Bytes >= estimate / 20).Select(s => $"{s.What} {Text(s.Bytes)}"));
        throw new ArgumentException(
            $"{key} = {value.ToString(CultureInfo.InvariantCulture)} is out of range for this machine: training would need at least {Text(estimate)} of memory ({parts}); " +
            $"{Text(limit)} is available. Reduce {key}.", key);
    }

    static List<(string What, double Bytes)> Sizes(RunConfig config)
    {
        var t = config.Training;
        double batch = t.BatchSize;
        if (config.Task == RunConfig.Vision)
        {
            var v = config.Vit;
            double d = v.DModel, tokens = v.Tokens, hidden = Hidden(v.MlpHidden, v.DModel);
            var weights = v.Channels * (double)v.PatchSize * v.PatchSize * d + tokens * d + v.Layers * Block(d, hidden, v.Connection.Streams) + d * v.Classes;
            var data = config.Data.Path is null ? config.Data.ProceduralImages / (1 - config.Data.ValidationFraction) * v.Channels * v.ImageSize * (double)v.ImageSize : 0;
            return
            [
                ("weights, gradients and optimizer state", 4 * Float * weights),
                ("activations", Float * v.Layers * Activations(batch, tokens, d, hidden, v.Heads, v.Connection.Streams)),
                ("built-in images", data),
            ];
        }
        var m = config.Model;
        double width = m.DModel, seq = m.SeqLen, mlp = Hidden(m.MlpHidden, m.DModel);
        var parameters = m.VocabSize * width * (m.TieEmbeddings ? 1 : 2) + m.Layers * Block(width, mlp, m.Connection.Streams);
        var corpus = config.Data.Path is null ? config.Data.CorpusDocuments / (1 - config.Data.ValidationFraction) * (seq + 1) * 2 * Float : 0;
        return
        [
            ("weights, gradients and optimizer state", 4 * Float * parameters),
            ("activations", Float * m.Layers * Activations(batch, seq, width, mlp, m.Heads, m.Connection.Streams)),
            ("logits", 2 * Float * batch * seq * m.VocabSize),
            ("built-in corpus", corpus),
        ];
    }

    /// <summary>Attention (4d²), SwiGLU (3·d·hidden), and mHC's projection φ of each of the block's two connections.</summary>
    static double Block(double d, double hidden, int n) => 4 * d * d + 3 * d * hidden + 2 * n * d * (n * n + 2.0 * n);

    /// <summary>Kept for backward per block: the stream state at both connections, the branches' inputs and outputs, one layer's attention scores.</summary>
    static double Activations(double batch, double tokens, double d, double hidden, int heads, int n) =>
        batch * tokens * (2 * n * d + 8 * d + 3 * hidden) + batch * heads * tokens * tokens;

    static double Hidden(int configured, int d) => configured > 0 ? configured : Math.Ceiling(8.0 * d / 3 / 8) * 8;

    static IEnumerable<(string Key, long Value, RunConfig Halved)> Settings(RunConfig c)
    {
        var t = c.Training;
        yield return ("training.batch_size", t.BatchSize, c with { Training = t with { BatchSize = Math.Max(1, t.BatchSize / 2) } });
        if (c.Task == RunConfig.Vision)
        {
            var v = c.Vit;
            yield return ("vit.d_model", v.DModel, c with { Vit = v with { DModel = Math.Max(1, v.DModel / 2) } });
            yield return ("vit.layers", v.Layers, c with { Vit = v with { Layers = Math.Max(1, v.Layers / 2) } });
            if (v.MlpHidden > 0) yield return ("vit.mlp_hidden", v.MlpHidden, c with { Vit = v with { MlpHidden = Math.Max(1, v.MlpHidden / 2) } });
            if (c.Data.Path is null) yield return ("data.procedural_images", c.Data.ProceduralImages, c with { Data = c.Data with { ProceduralImages = Math.Max(1, c.Data.ProceduralImages / 2) } });
            yield break;
        }
        var m = c.Model;
        yield return ("model.d_model", m.DModel, c with { Model = m with { DModel = Math.Max(1, m.DModel / 2) } });
        yield return ("model.layers", m.Layers, c with { Model = m with { Layers = Math.Max(1, m.Layers / 2) } });
        yield return ("model.seq_len", m.SeqLen, c with { Model = m with { SeqLen = Math.Max(1, m.SeqLen / 2) } });
        if (m.MlpHidden > 0) yield return ("model.mlp_hidden", m.MlpHidden, c with { Model = m with { MlpHidden = Math.Max(1, m.MlpHidden / 2) } });
        if (c.Data.Path is null) yield return ("data.corpus_documents", c.Data.CorpusDocuments, c with { Data = c.Data with { CorpusDocuments = Math.Max(1, c.Data.CorpusDocuments / 2) } });
    }

    static string Text(double bytes)
    {
        string[] units = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB"];
        var unit = 0;
        while (bytes >= 1000 && unit < units.Length - 1) (bytes, unit) = (bytes / 1000, unit + 1);
        return string.Create(CultureInfo.InvariantCulture, $"{bytes:0.#} {units[unit]}");
    }
}
