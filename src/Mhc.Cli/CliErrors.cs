using Spectre.Console;

namespace Mhc.Cli;

/// <summary>Turns expected failures (bad options, bad files) into one clear line on stderr and an exit code.</summary>
static class CliErrors
{
    /// <summary>Exit code for invalid options or configuration.</summary>
    public const int InvalidArguments = 2;

    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (ArgumentException e)
        {
            // The message already names the option; drop .NET's "(Parameter 'x')" suffix.
            var message = e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal);
            Console.Error.WriteLine($"error: {message}");
            return InvalidArguments;
        }
    }
}
