using System.Globalization;
using Mhc.Training;
using Spectre.Console;

namespace Mhc.Cli;

/// <summary>
/// Shows training progress: a live progress bar with loss, tokens/s and ETA on a terminal, plain lines
/// (about 20 per run, plus every evaluation) when the output is redirected.
/// </summary>
static class TrainingDisplay
{
    public static bool Interactive => AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;

    /// <summary>
    /// Runs <paramref name="jobs"/> one after another under one display; each job reports through its trainer. A job that
    /// returns null was not started (the user stopped the jobs before it).
    /// </summary>
    public static List<T> Run<T>(IReadOnlyList<(string Label, long Steps, Func<Action<Trainer>, T> Job)> jobs)
    {
        var results = new List<T>();
        if (!Interactive)
        {
            foreach (var (label, steps, job) in jobs)
                results.Add(job(trainer => Attach(trainer, label, steps, line: true, null)));
            return results;
        }
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var tasks = jobs.Select(j => context.AddTask(Markup.Escape(j.Label), autoStart: false, maxValue: j.Steps)).ToList();
                for (var i = 0; i < jobs.Count; i++)
                {
                    var (label, steps, job) = jobs[i];
                    tasks[i].StartTask();
                    var task = tasks[i];
                    var result = job(trainer => Attach(trainer, label, steps, line: false, task));
                    results.Add(result);
                    // A job that trained shows where it stopped; one read back from a finished run reported no step.
                    if (result is null) task.Description = Markup.Escape($"{label}  not started");
                    else if (task.Value == 0) task.Value = task.MaxValue;
                    task.StopTask();
                }
            });
        return results;
    }

    static void Attach(Trainer trainer, string label, long steps, bool line, ProgressTask? task)
    {
        var every = Math.Max(1, steps / 20);
        trainer.Warning += message => Console.Error.WriteLine($"warning: {message}");
        trainer.Progress += p =>
        {
            var text = Describe(p);
            if (task is not null)
            {
                task.Value = p.Step;
                task.Description = Markup.Escape($"{label}  {text}");
            }
            else if (line && (p.Step % every == 0 || p.ValLoss is not null || p.Step == p.TotalSteps))
                Console.WriteLine($"{label}  step {p.Step}/{p.TotalSteps}  {text}  elapsed {Duration(p.ElapsedS)}");
        };
    }

    static string Describe(TrainingProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"loss {p.TrainLoss:F4}{(p.ValLoss is { } v ? $"  val {v:F4}" : "")}  lr {p.Lr:0.##e0}  {p.TokensPerS:N0} tok/s");

    public static string Duration(double seconds) =>
        seconds < 60 ? $"{seconds:F1}s" : seconds < 3600 ? $"{(int)seconds / 60}m{(int)seconds % 60:D2}s" : $"{(int)seconds / 3600}h{(int)seconds % 3600 / 60:D2}m";
}
