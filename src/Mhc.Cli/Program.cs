using System.CommandLine;
using Mhc.Cli;

var root = new RootCommand("mHC.NET: residual, Hyper-Connection and Manifold-constrained Hyper-Connection models.")
{
    DemoCommand.Create(),
};
return root.Parse(args).Invoke();
