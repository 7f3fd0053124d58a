namespace Mhc.Connections;

/// <summary>How mHC's residual logits <c>b_res</c> start (spec §5.1). Either way H_res's rows sum to 1, so at step 0 the model is the Pre-Norm residual network.</summary>
public enum ResInit
{
    /// <summary>Diagonal 0, off-diagonal −4: H_res leans to the identity (0.948 on the diagonal at n = 4), far from saturation. The default.</summary>
    Identity,

    /// <summary>All 0, as Megatron-LM starts it: H_res = 1/n everywhere, every stream mixed evenly.</summary>
    Uniform,
}

/// <summary>The names of <see cref="ResInit"/> in configs and on the command line: <c>identity</c>, <c>uniform</c>.</summary>
public static class ResInitNames
{
    /// <summary>The name of <paramref name="init"/>.</summary>
    public static string ToName(this ResInit init) => init == ResInit.Uniform ? "uniform" : "identity";

    /// <summary>The init called <paramref name="name"/>.</summary>
    /// <param name="name"><c>identity</c> or <c>uniform</c>.</param>
    public static ResInit Parse(string name) => name switch
    {
        "identity" => ResInit.Identity,
        "uniform" => ResInit.Uniform,
        _ => throw new ArgumentException($"res_init = '{name}' is unknown: allowed identity, uniform.", nameof(name)),
    };
}
