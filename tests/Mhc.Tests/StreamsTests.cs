using Mhc.Connections;
using static TorchSharp.torch;

namespace Mhc.Tests;

public class StreamsTests
{
    [Fact]
    public void Expand_copies_and_collapse_sums()
    {
        manual_seed(40);
        using var h = randn(2, 3, 5, dtype: ScalarType.Float64);
        using var x = Streams.Expand(h, 4);
        Assert.Equal([2L, 3, 4, 5], x.shape);
        var hs = Reference.Values(h);
        var xs = Reference.Values(x);
        for (var token = 0; token < 6; token++)
            for (var s = 0; s < 4; s++)
                for (var c = 0; c < 5; c++)
                    Assert.Equal(hs[token * 5 + c], xs[(token * 4 + s) * 5 + c]);

        using var distinct = randn(2, 3, 4, 5, dtype: ScalarType.Float64);
        using var collapsed = Streams.Collapse(distinct);
        var ds = Reference.Values(distinct);
        var cs = Reference.Values(collapsed);
        for (var token = 0; token < 6; token++)
            for (var c = 0; c < 5; c++)
            {
                var sum = 0.0;
                for (var s = 0; s < 4; s++) sum += ds[(token * 4 + s) * 5 + c];
                Assert.Equal(sum, cs[token * 5 + c], 1e-12);
            }
    }
}
