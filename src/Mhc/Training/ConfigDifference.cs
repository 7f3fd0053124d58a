using System.Text.Json.Nodes;

namespace Mhc.Training;

/// <summary>Finds the first setting in which two run configurations differ, for clear resume errors.</summary>
static class ConfigDifference
{
    /// <summary>Settings a resumed run may change: they change no result (threads only the last bits of libtorch's sums).</summary>
    static readonly HashSet<string> Free = ["training.threads", "training.diagnostics_every", "training.skip_non_finite"];

    /// <summary>"model.connection.kind: mhc (stored) vs hc (requested)", or null when the two are equal (up to the free settings).</summary>
    /// <param name="stored">The configuration a run was started with.</param>
    /// <param name="requested">The configuration asked for now.</param>
    public static string? Find(RunConfig stored, RunConfig requested)
    {
        ArgumentNullException.ThrowIfNull(stored);
        ArgumentNullException.ThrowIfNull(requested);
        return Compare(JsonNode.Parse(stored.ToJson()), JsonNode.Parse(requested.ToJson()), "");
    }

    static string? Compare(JsonNode? a, JsonNode? b, string path)
    {
        if (a is JsonObject objectA && b is JsonObject objectB)
        {
            foreach (var key in objectA.Select(p => p.Key).Union(objectB.Select(p => p.Key)))
                if (Compare(objectA[key], objectB[key], path.Length == 0 ? key : $"{path}.{key}") is { } found)
                    return found;
            return null;
        }
        if (Free.Contains(path)) return null;
        var textA = a?.ToJsonString() ?? "null";
        var textB = b?.ToJsonString() ?? "null";
        return textA == textB ? null : $"{path}: {textA} stored vs {textB} requested";
    }
}
