using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Mhc.Cli;

/// <summary>
/// Number options read the invariant culture's plain format only (<c>0.001</c>, <c>1e-3</c>): the default parse takes
/// ',' as a group separator, so <c>--lr 0,001</c> would silently be 1.
/// </summary>
static class NumberOptions
{
    public static Option<double?> Plain(this Option<double?> option)
    {
        option.CustomParser = result => Parse(result);
        return option;
    }

    public static Option<double> Plain(this Option<double> option)
    {
        var fallback = option.DefaultValueFactory;
        option.CustomParser = result => result.Tokens.Count == 0 && fallback is not null ? fallback(result) : Parse(result) ?? 0;
        return option;
    }

    static double? Parse(ArgumentResult result)
    {
        if (result.Tokens.Count == 0) return null;
        var text = result.Tokens[^1].Value;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)) return value;
        var name = (result.Parent as OptionResult)?.Option.Name ?? "the value";
        result.AddError($"{name} = '{text}' is not a number: write it plainly, like 0.001 or 1e-3 ('.' as the decimal point, no group separators).");
        return null;
    }
}
