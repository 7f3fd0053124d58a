using Mhc.Connections;
using static TorchSharp.torch;

namespace Mhc.Models;

/// <summary>A model built on the n-stream state: what training and diagnostics need to see of it.</summary>
public interface IStreamModel
{
    /// <summary>Every sub-layer's connection in order.</summary>
    IReadOnlyList<Connection> Connections { get; }

    /// <summary>The stream state entering every sub-layer, then the final state, for one input batch.</summary>
    /// <param name="input">A model input (token ids or images).</param>
    IReadOnlyList<Tensor> StreamStates(Tensor input);
}
