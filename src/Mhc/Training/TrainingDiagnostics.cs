using Mhc.Connections;
using Mhc.Diagnostics;
using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>The stability diagnostics of a training task: its model measured on its probe input.</summary>
public static class TrainingDiagnostics
{
    /// <summary>Measures the task's model in eval mode on its probe input (<see cref="ITrainingTask.ProbeStates"/>).</summary>
    /// <param name="task">A training task.</param>
    public static StabilityProfile Measure(ITrainingTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var wasTraining = task.Model.training;
        task.Model.eval();
        try
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            return StabilityProbe.Measure(task.Connections, task.ProbeStates(), task.Model.modules().OfType<StreamEnds>().FirstOrDefault());
        }
        finally
        {
            if (wasTraining) task.Model.train();
        }
    }

    /// <summary>
    /// A <see cref="Trainer.Diagnose"/> hook: measures the task, writes the full profile to
    /// <c>&lt;run&gt;/diagnostics.json</c> and returns the summary for the metrics line.
    /// </summary>
    /// <param name="runDirectory">Run directory.</param>
    public static Func<ITrainingTask, long, DiagnosticsSummary?> Hook(string runDirectory) => (task, _) =>
    {
        if (task.Connections.Count == 0) return null;
        var profile = Measure(task);
        profile.Save(Path.Combine(runDirectory, StabilityProfile.FileName));
        return profile.Summary();
    };
}
