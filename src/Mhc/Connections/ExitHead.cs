namespace Mhc.Connections;

/// <summary>How a model leaves the n-stream state: the last state <c>[B, T, n, d]</c> becomes the hidden state <c>[B, T, d]</c> the final norm reads.</summary>
public enum ExitHead
{
    /// <summary>The sum over streams (<see cref="Streams.Collapse"/>). The default.</summary>
    Sum,

    /// <summary>
    /// DeepSeek-V4's <c>hc_head</c>: per token, weights <c>w = σ(α·(v·φ)/rms(v) + b) + ε</c> over the streams from the
    /// flattened state v, then <c>Σ_s w_s x_s</c>. Needs n ≥ 2.
    /// </summary>
    Learned,
}

/// <summary>The names of <see cref="ExitHead"/> in configs and on the command line: <c>sum</c>, <c>learned</c>.</summary>
public static class ExitHeadNames
{
    /// <summary>The name of <paramref name="head"/>.</summary>
    public static string ToName(this ExitHead head) => head == ExitHead.Learned ? "learned" : "sum";

    /// <summary>The exit head called <paramref name="name"/>.</summary>
    /// <param name="name"><c>sum</c> or <c>learned</c>.</param>
    public static ExitHead Parse(string name) => name switch
    {
        "sum" => ExitHead.Sum,
        "learned" => ExitHead.Learned,
        _ => throw new ArgumentException($"exit_head = '{name}' is unknown: allowed sum, learned.", nameof(name)),
    };
}
