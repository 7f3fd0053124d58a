namespace Mhc.Connections;

/// <summary>The short names of <see cref="ConnectionKind"/> used on the command line, in JSON and in reports.</summary>
public static class ConnectionKindNames
{
    static readonly (ConnectionKind Kind, string Name)[] Table =
    [
        (ConnectionKind.Residual, "residual"),
        (ConnectionKind.HyperStatic, "hc-static"),
        (ConnectionKind.HyperDynamic, "hc"),
        (ConnectionKind.Manifold, "mhc"),
        (ConnectionKind.ManifoldStatic, "mhc-static"),
        (ConnectionKind.ManifoldLite, "mhc-lite"),
        (ConnectionKind.ManifoldResOnly, "mhc-res-only"),
        (ConnectionKind.ManifoldResPre, "mhc-res-pre"),
        (ConnectionKind.ResidualMatrix, "rmt"),
        (ConnectionKind.MultiwayDense, "muddformer"),
    ];

    /// <summary>All names, in the order residual, hc-static, hc, mhc, then mHC's variants.</summary>
    public static IReadOnlyList<string> All { get; } = Table.Select(t => t.Name).ToArray();

    /// <summary>The short name of <paramref name="kind"/>.</summary>
    /// <param name="kind">A connection kind.</param>
    public static string ToName(this ConnectionKind kind) =>
        Table.FirstOrDefault(t => t.Kind == kind).Name ?? throw new ArgumentException($"ConnectionKind {(int)kind} has no name.", nameof(kind));

    /// <summary>The kind called <paramref name="name"/> (case-insensitive).</summary>
    /// <param name="name">One of <see cref="All"/>.</param>
    public static ConnectionKind Parse(string name)
    {
        foreach (var (kind, n) in Table)
            if (string.Equals(n, name, StringComparison.OrdinalIgnoreCase)) return kind;
        throw new ArgumentException($"connection = '{name}' is unknown: allowed {string.Join(", ", All)}.", nameof(name));
    }
}
