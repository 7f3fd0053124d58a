namespace Mhc.Cli;

static class Program
{
    static int Main(string[] args) => CliApp.Run(args);
}
