using System.CommandLine;

namespace Mhc.Cli;

/// <summary>The <c>mhc</c> command tree; <see cref="Run"/> is the whole program (tests call it in-process).</summary>
public static class CliApp
{
    /// <summary>Parses <paramref name="args"/>, runs the command and returns its exit code.</summary>
    /// <param name="args">Command-line arguments without the program name.</param>
    public static int Run(string[] args)
    {
        var root = new RootCommand("mHC.NET: train, compare and diagnose residual, Hyper-Connection (HC) and Manifold-constrained HC (mHC) models.")
        {
            GlobalOptions.Verbose,
            TrainCommand.Create(),
            SampleCommand.Create(),
            EvalCommand.Create(),
            BenchCommand.Create(),
            DemoCommand.Create(),
        };
        return root.Parse(args).Invoke();
    }
}
