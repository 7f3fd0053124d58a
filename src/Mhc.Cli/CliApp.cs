using System.CommandLine;

namespace Mhc.Cli;

/// <summary>The <c>mhc</c> command tree; <see cref="Run"/> is the whole program (tests call it in-process).</summary>
public static class CliApp
{
    /// <summary>The arguments of the running command, for "how to reproduce" sections.</summary>
    public static IReadOnlyList<string> Arguments { get; private set; } = [];

    /// <summary>Parses <paramref name="args"/>, runs the command and returns its exit code.</summary>
    /// <param name="args">Command-line arguments without the program name.</param>
    public static int Run(string[] args)
    {
        // Reports, JSON and logs read the same on every machine.
        System.Globalization.CultureInfo.DefaultThreadCurrentCulture = System.Globalization.CultureInfo.InvariantCulture;
        System.Globalization.CultureInfo.CurrentCulture = System.Globalization.CultureInfo.InvariantCulture;
        Arguments = args;
        var root = new RootCommand("mHC.NET: train, compare and diagnose residual, Hyper-Connection (HC) and Manifold-constrained HC (mHC) models.")
        {
            GlobalOptions.Verbose,
            CompareCommand.Create(),
            SweepCommand.Create(),
            TrainCommand.Create(),
            SampleCommand.Create(),
            EvalCommand.Create(),
            InspectCommand.Create(),
            ExportCommand.Create(),
            BenchCommand.Create(),
            DemoCommand.Create(),
        };
        var commands = root.Subcommands.Select(c => c.Name).ToList();
        if (args.Length > 0 && !args[0].StartsWith('-') && !commands.Contains(args[0]))
        {
            Console.Error.WriteLine($"error: unknown command '{args[0]}' (commands: {string.Join(", ", commands)}).");
            return ExitCodes.InvalidArguments;
        }
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // Unknown options, missing values, bad numbers: one line each, the documented exit code, no help dump.
            foreach (var error in parsed.Errors) Console.Error.WriteLine($"error: {ParseErrors.Describe(error.Message)}");
            Console.Error.WriteLine("(run with --help for the options)");
            return ExitCodes.InvalidArguments;
        }
        return parsed.Invoke();
    }
}
