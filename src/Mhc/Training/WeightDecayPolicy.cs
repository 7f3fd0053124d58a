using Mhc.Connections;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>
/// Which parameters AdamW decays: weight matrices (two or more dimensions), except those a connection declares
/// exempt (<see cref="Connection.ParametersWithoutWeightDecay"/>: mHC's <c>bias_res</c>, HC's static matrices…).
/// Vectors and scalars (norms, biases, gates) are never decayed.
/// </summary>
public static class WeightDecayPolicy
{
    /// <summary>The parameters of <paramref name="model"/> split into those AdamW decays and the rest.</summary>
    /// <param name="model">A model; every <see cref="Connection"/> inside it is asked for its exemptions.</param>
    public static (IReadOnlyList<Parameter> Decayed, IReadOnlyList<Parameter> NotDecayed) Split(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var exempt = model.modules().OfType<Connection>().SelectMany(c => c.ParametersWithoutWeightDecay)
            .ToHashSet(ReferenceEqualityComparer.Instance);
        var parameters = model.parameters().ToList();
        bool Decayed(Parameter p) => p.dim() >= 2 && !exempt.Contains(p);
        return (parameters.Where(Decayed).ToList(), parameters.Where(p => !Decayed(p)).ToList());
    }
}
