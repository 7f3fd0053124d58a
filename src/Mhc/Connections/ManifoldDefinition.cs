namespace Mhc.Connections;

/// <summary>Which arithmetic an mHC connection computes its coefficients with (spec §5, §10).</summary>
public enum ManifoldDefinition
{
    /// <summary>The paper's: <c>H_pre = σ(·)</c>, Sinkhorn from <c>exp</c> with plain normalisations. The default; fused on the CPU.</summary>
    Paper,

    /// <summary>
    /// DeepSeek-V4's reference code: <c>H_pre = σ(·) + ε</c>, Sinkhorn starting with a softmax, ε (1e-6) added after it and
    /// to every denominator. Lets weights trained by DeepSeek's code give their outputs; runs on the reference path.
    /// </summary>
    DeepSeekV4,
}

/// <summary>The names of <see cref="ManifoldDefinition"/> in configs and on the command line: <c>paper</c>, <c>deepseek-v4</c>.</summary>
public static class ManifoldDefinitionNames
{
    /// <summary>The name of <paramref name="definition"/>.</summary>
    public static string ToName(this ManifoldDefinition definition) => definition == ManifoldDefinition.DeepSeekV4 ? "deepseek-v4" : "paper";

    /// <summary>The definition called <paramref name="name"/>.</summary>
    /// <param name="name"><c>paper</c> or <c>deepseek-v4</c>.</param>
    public static ManifoldDefinition Parse(string name) => name switch
    {
        "paper" => ManifoldDefinition.Paper,
        "deepseek-v4" => ManifoldDefinition.DeepSeekV4,
        _ => throw new ArgumentException($"definition = '{name}' is unknown: allowed paper, deepseek-v4.", nameof(name)),
    };
}
