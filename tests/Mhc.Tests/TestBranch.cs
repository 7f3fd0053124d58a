using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mhc.Tests;

/// <summary>A small non-linear branch F: [B, T, d] → [B, T, d] (Linear then tanh).</summary>
sealed class TestBranch : nn.Module<Tensor, Tensor>
{
    readonly Linear proj;

    public TestBranch(int d) : base("test_branch")
    {
        proj = nn.Linear(d, d);
        RegisterComponents();
    }

    public override Tensor forward(Tensor u) => proj.call(u).tanh();
}
