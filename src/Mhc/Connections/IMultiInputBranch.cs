using static TorchSharp.torch;

namespace Mhc.Connections;

/// <summary>
/// A branch that can take its query, key and value from three different inputs (attention), as MUDDFormer's
/// connection feeds it (<see cref="ConnectionKind.MultiwayDense"/>). With one input for all three it is the ordinary branch.
/// </summary>
internal interface IMultiInputBranch
{
    /// <summary>The branch output <c>[B, T, d]</c> for query, key and value inputs, each <c>[B, T, d]</c>.</summary>
    /// <param name="query">Input the queries are computed from.</param>
    /// <param name="key">Input the keys are computed from.</param>
    /// <param name="value">Input the values are computed from.</param>
    Tensor Call(Tensor query, Tensor key, Tensor value);
}
