using Mhc.Training;

namespace Mhc.Cli;

/// <summary>
/// Turns expected failures into one clear line on stderr and a documented exit code (<see cref="ExitCodes"/>).
/// Stack traces only with <c>--verbose</c>.
/// </summary>
static class CliErrors
{
    public static int Run(bool verbose, Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e)
        {
            var (code, message) = Classify(e);
            Console.Error.WriteLine($"error: {message}");
            if (verbose) Console.Error.WriteLine(e);
            else if (code == ExitCodes.InternalError) Console.Error.WriteLine("(run again with --verbose for the stack trace)");
            return code;
        }
    }

    // The library's messages name config keys; the tool adds the options that do the same.
    static (int Code, string Message) Classify(Exception e) => e switch
    {
        RunExistsException => (ExitCodes.InvalidArguments, $"{e.Message} (--resume continues it; --out chooses another directory)"),
        ArgumentException a => (ExitCodes.InvalidArguments, WithoutParameterSuffix(a)),
        NonFiniteException => (ExitCodes.NumericalFault, $"{e.Message} (options: --lr, --skip-nonfinite)"),
        CheckpointException or Interop.WeightFileException => (ExitCodes.CheckpointError, e.Message),
        RunDirectoryInUseException => (ExitCodes.RunDirectoryInUse, $"{e.Message} (--out chooses another directory)"),
        InvalidDataException or FileNotFoundException or DirectoryNotFoundException => (ExitCodes.DataError, e.Message),
        IOException or UnauthorizedAccessException => (ExitCodes.WriteFailed, e.Message),
        OperationCanceledException => (ExitCodes.Cancelled, "cancelled."),
        _ => (ExitCodes.InternalError, $"unexpected {e.GetType().Name}: {e.Message}"),
    };

    // The message already names the option; .NET appends "(Parameter 'x')".
    static string WithoutParameterSuffix(ArgumentException e) =>
        e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal);
}
