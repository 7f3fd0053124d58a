using System.CommandLine;

namespace Mhc.Cli;

/// <summary>Options every command accepts.</summary>
static class GlobalOptions
{
    public static readonly Option<bool> Verbose = new("--verbose")
    {
        Description = "Print stack traces with errors.",
        Recursive = true,
    };
}
