using System.CommandLine;
using System.Text.Json;
using Mhc.Connections;
using Mhc.Diagnostics;
using Mhc.Training;

namespace Mhc.Cli;

/// <summary><c>mhc inspect</c>: per-sub-layer coefficient statistics and gains of a saved model.</summary>
static class InspectCommand
{
    public static Command Create()
    {
        var source = new ModelSource.Options();
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var command = new Command("inspect", "Show each sub-layer's H_pre / H_post / H_res statistics and gains of a saved model, on the run's probe sequence.")
        {
            json,
        };
        foreach (var option in source.All) command.Options.Add(option);
        command.SetAction(parse => CliErrors.Run(parse.GetValue(GlobalOptions.Verbose), () =>
        {
            var loaded = source.Resolve(parse);
            var config = loaded.Config;
            var prepared = TrainingTasks.Prepare(config, loaded.CacheDirectory);
            using var task = prepared.Create(config);
            loaded = loaded.LoadInto(task.Model);
            var profile = TrainingDiagnostics.Measure(task);
            var kind = config.Connection.Kind.ToName();
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    checkpoint = loaded.Checkpoint?.Directory,
                    step = loaded.Checkpoint?.Step,
                    weights = loaded.Weights,
                    kind,
                    task = config.Task,
                    streams = config.Connection.Streams,
                    sublayers = profile.Sublayers,
                    summary = profile.Summary(),
                }, Json));
                return ExitCodes.Success;
            }
            Console.WriteLine($"{loaded.Description}: {RunDescription.Model(config)}; probe = the first validation {(config.Task == RunConfig.Vision ? "image" : "sequence")}");
            Console.WriteLine($"{"k",3} {"branch",-9} {"H_pre min…max",15} {"H_post min…max",15} {"gain fwd",9} {"gain bwd",9} {"comp fwd",9} {"comp bwd",9} {"comp min col",12} {"DS error",9} {"saturated",9} {"cos",6} {"signal",7} {"sig≠id",7}");
            foreach (var d in profile.Sublayers)
                Console.WriteLine($"{d.Index,3} {(d.Index % 2 == 0 ? "attention" : "mlp"),-9} {$"{d.PreMin:F3}…{d.PreMax:F3}",15} {$"{d.PostMin:F3}…{d.PostMax:F3}",15} " +
                    $"{d.ForwardGain,9:F4} {d.BackwardGain,9:F4} {d.CompositeForwardGain,9:F4} {d.CompositeBackwardGain,9:F4} {d.CompositeMinColumnSum,12:F4} " +
                    $"{d.DoublyStochasticError,9:F4} {(d.Saturation is { } s ? $"{s:P1}" : "–"),9} {d.StateCosine,6:F3} {d.SignalGain,7:F3} {d.SignalIdentityError,7:F3}");
            Console.WriteLine("gains: token means of max |row sum| (forward) and max |column sum| (backward); comp = composite H_res(L−1)·…·H_res(k); " +
                "signal = |P_k v| / |v| and sig≠id = |P_k v − v| / |v| for the skip path P_k from the branch output to the head's input, random probe v (docs/connections.md).");
            return ExitCodes.Success;
        }));
        return command;
    }

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };
}
