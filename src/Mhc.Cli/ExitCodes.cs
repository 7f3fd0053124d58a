namespace Mhc.Cli;

/// <summary>Documented exit codes of the <c>mhc</c> tool (README, "Errors and exit codes").</summary>
public static class ExitCodes
{
    public const int Success = 0;
    public const int InternalError = 1;
    public const int InvalidArguments = 2;
    public const int DataError = 3;
    public const int CheckpointError = 4;
    public const int NumericalFault = 5;
    public const int WriteFailed = 6;
    public const int RunDirectoryInUse = 7;
    public const int Cancelled = 130;
    public const int Terminated = 143;
}
