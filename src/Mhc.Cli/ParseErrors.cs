using System.Text.RegularExpressions;

namespace Mhc.Cli;

/// <summary>System.CommandLine's messages with the value types in words instead of .NET names (<c>System.Nullable`1[System.Int32]</c>).</summary>
static partial class ParseErrors
{
    public static string Describe(string message)
    {
        var match = NotParsed().Match(message);
        if (!match.Success) return message;
        var type = match.Groups["type"].Value;
        var what = type.Contains("Int", StringComparison.Ordinal) ? "a whole number"
            : type.Contains("Double", StringComparison.Ordinal) || type.Contains("Single", StringComparison.Ordinal) ? "a number"
            : type.Contains("Boolean", StringComparison.Ordinal) ? "true or false"
            : "a valid value";
        return $"{match.Groups["option"].Value} = '{match.Groups["value"].Value}' is not {what}.";
    }

    [GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for option '(?<option>[^']+)' as expected type '(?<type>[^']+)'")]
    private static partial Regex NotParsed();
}
