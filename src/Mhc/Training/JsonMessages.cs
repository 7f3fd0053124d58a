using System.Text.Json;
using System.Text.RegularExpressions;

namespace Mhc.Training;

/// <summary>
/// Puts System.Text.Json's errors in the words of a config file: the key and line, what value was expected, the keys a
/// section allows; never .NET type names (<c>System.Int32</c>, <c>Mhc.Training.TrainingOptions</c>).
/// </summary>
static partial class JsonMessages
{
    /// <summary>"unknown key 'stepz' (allowed: steps, batch_size, …) at 'training.stepz' (line 3)" and the like.</summary>
    /// <param name="e">A deserialization error of a <see cref="RunConfig"/> or a part of one.</param>
    public static string Describe(JsonException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var text = WithoutLocation(e.Message);
        if (UnknownMember().Match(text) is { Success: true } unknown)
        {
            var allowed = Keys(unknown.Groups["type"].Value);
            text = $"unknown key '{unknown.Groups["key"].Value}'{(allowed.Count > 0 ? $" (allowed: {string.Join(", ", allowed)})" : "")}";
        }
        else if (NotConvertible().Match(text) is { Success: true } conversion)
            text = $"expected {Expected(conversion.Groups["type"].Value)}";
        var key = e.Path is { Length: > 1 } path ? $" at '{path.TrimStart('$', '.')}'" : "";
        var line = e.LineNumber is { } l ? $" (line {l + 1})" : "";
        return $"{text}{key}{line}";
    }

    static string WithoutLocation(string message) => Location().Replace(message, "").TrimEnd();

    static string Expected(string type)
    {
        if (Nullable().Match(type) is { Success: true } inner) return $"{Expected(inner.Groups["inner"].Value)} or null";
        return type switch
        {
            "System.Int32" or "System.Int64" => "a whole number",
            "System.Single" or "System.Double" => "a number",
            "System.Boolean" => "true or false",
            "System.String" => "a string",
            _ when Keys(type) is { Count: > 0 } keys => $"a section {{ … }} with keys {string.Join(", ", keys)}",
            _ => "another value",
        };
    }

    /// <summary>The JSON keys of one of the config's section types, by its .NET name.</summary>
    static List<string> Keys(string typeName)
    {
        var type = typeof(RunConfig).Assembly.GetType(typeName);
        if (type is null || !type.IsClass || type == typeof(string)) return [];
        return RunConfig.Json.GetTypeInfo(type).Properties.Select(p => p.Name).ToList();
    }

    [GeneratedRegex(@"The JSON property '(?<key>[^']*)' could not be mapped to any \.NET member contained in type '(?<type>[^']*)'\.")]
    private static partial Regex UnknownMember();

    [GeneratedRegex(@"The JSON value could not be converted to (?<type>\S+?)\.?$")]
    private static partial Regex NotConvertible();

    [GeneratedRegex(@"^System\.Nullable`1\[(?<inner>.+)\]$")]
    private static partial Regex Nullable();

    [GeneratedRegex(@"\s*(Path: \S+ \| )?LineNumber: \d+ \| BytePositionInLine: \d+\.")]
    private static partial Regex Location();
}
