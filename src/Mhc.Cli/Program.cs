namespace Mhc.Cli;

static class Program
{
    static int Main(string[] args)
    {
        AllocatorTuning.KeepFreedMemory();
        return CliApp.Run(args);
    }
}
