using Mhc.Cli;

namespace Mhc.Tests;

/// <summary>Runs <c>mhc</c> in this process (no start-up cost) and captures what it writes to standard error.</summary>
static class InProcessCli
{
    /// <summary>The exit code and the standard error of <c>mhc <paramref name="args"/></c>.</summary>
    public static (int Code, string Err) Run(params string[] args)
    {
        var err = new StringWriter();
        var original = Console.Error;
        Console.SetError(err);
        try
        {
            return (CliApp.Run(args), err.ToString());
        }
        finally
        {
            Console.SetError(original);
        }
    }
}
