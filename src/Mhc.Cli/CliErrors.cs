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
        ArgumentException a => (ExitCodes.InvalidArguments, WithOption(WithoutParameterSuffix(a))),
        NonFiniteException => (ExitCodes.NumericalFault, $"{e.Message} (options: --lr, --skip-nonfinite)"),
        CheckpointException or Interop.WeightFileException => (ExitCodes.CheckpointError, e.Message),
        RunDirectoryInUseException => (ExitCodes.RunDirectoryInUse, $"{e.Message} (--out chooses another directory)"),
        InvalidDataException or FileNotFoundException or DirectoryNotFoundException => (ExitCodes.DataError, e.Message),
        IOException or UnauthorizedAccessException => (ExitCodes.WriteFailed, e.Message),
        OperationCanceledException => (ExitCodes.Cancelled, "cancelled."),
        _ => (ExitCodes.InternalError, $"unexpected {e.GetType().Name}: {e.Message}"),
    };

    /// <summary>Config keys that an option of train / compare / sweep sets, for messages that name the key.</summary>
    static readonly (string Key, string Option)[] Options =
    [
        ("model.d_model", "--d-model"), ("vit.d_model", "--d-model"), ("model.layers", "--layers"), ("vit.layers", "--layers"),
        ("model.heads", "--heads"), ("vit.heads", "--heads"), ("model.seq_len", "--seq-len"), ("training.batch_size", "--batch-size"),
        ("training.learning_rate", "--lr"), ("training.steps", "--steps"), ("training.seed", "--seed"), ("training.threads", "--threads"),
        ("training.diagnostics_every", "--diagnostics-every"), ("training.device", "--device"), ("data.path", "--data"),
        ("data.tokenizer", "--tokenizer"), ("connection.streams", "--streams"), ("connection.definition", "--mhc-definition"),
        ("connection.res_init", "--res-init"),
    ];

    /// <summary>Adds the option that sets the config key a message starts its complaint with ("model.d_model = …" → "(option --d-model)").</summary>
    static string WithOption(string message)
    {
        var first = Options.Where(o => message.Contains($"{o.Key} = ", StringComparison.Ordinal))
            .OrderBy(o => message.IndexOf($"{o.Key} = ", StringComparison.Ordinal)).FirstOrDefault();
        return first.Option is null || message.Contains(first.Option, StringComparison.Ordinal) ? message : $"{message} (option {first.Option})";
    }

    // The message already names the option; .NET appends "(Parameter 'x')".
    static string WithoutParameterSuffix(ArgumentException e) =>
        e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal);
}
