using TorchSharp;
using Mhc.Connections;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>Builds float64 connections around a <see cref="TestBranch"/> for exactness tests.</summary>
static class ConnectionFixture
{
    public const int D = 6;

    public static readonly TheoryData<ConnectionKind, int> KindsAndStreams = new()
    {
        { ConnectionKind.Residual, 1 },
        { ConnectionKind.HyperStatic, 4 },
        { ConnectionKind.HyperDynamic, 4 },
        { ConnectionKind.HyperDynamic, 3 },
        { ConnectionKind.Manifold, 4 },
        { ConnectionKind.Manifold, 2 },
        { ConnectionKind.ManifoldStatic, 4 },
        { ConnectionKind.ManifoldLite, 3 },
        { ConnectionKind.ManifoldResOnly, 4 },
        { ConnectionKind.ManifoldResPre, 3 },
    };

    public static Connection Create(ConnectionKind kind, int streams, int sublayerIndex = 0, bool useTanh = true)
    {
        var options = new ConnectionOptions { Kind = kind, Streams = streams, UseTanh = useTanh };
        var connection = Connection.Create(options, D, sublayerIndex, new TestBranch(D));
        connection.to(ScalarType.Float64);
        return connection;
    }

    /// <summary>A random stream state [2, 3, n, D] in float64 with distinct streams.</summary>
    public static Tensor State(int streams) => randn([2, 3, streams, D], ScalarType.Float64);
}
