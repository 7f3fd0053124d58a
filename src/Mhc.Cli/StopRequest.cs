using System.Runtime.InteropServices;

namespace Mhc.Cli;

/// <summary>
/// Ctrl+C (SIGINT) and SIGTERM (what <c>kill</c>, <c>timeout</c>, <c>docker stop</c>, systemd and Slurm send) both stop a
/// training after the current step, which is checkpointed; the run's lock is released on the way out. A second
/// signal ends the process at once.
/// </summary>
sealed class StopRequest : IDisposable
{
    readonly CancellationTokenSource source = new();
    readonly PosixSignalRegistration interrupt;
    readonly PosixSignalRegistration terminate;
    volatile bool terminated;

    public StopRequest()
    {
        interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle);
        terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle);
    }

    public CancellationToken Token => source.Token;

    public bool IsRequested => source.IsCancellationRequested;

    /// <summary>130 after Ctrl+C, 143 after SIGTERM (128 + the signal, as shells report them).</summary>
    public int ExitCode => terminated ? ExitCodes.Terminated : ExitCodes.Cancelled;

    void Handle(PosixSignalContext context)
    {
        if (source.IsCancellationRequested) return;   // the second signal takes its default action: exit now
        context.Cancel = true;
        terminated = context.Signal == PosixSignal.SIGTERM;
        source.Cancel();
        Console.Error.WriteLine(terminated
            ? "SIGTERM: stopping after this step and checkpointing it (a second signal aborts)..."
            : "stopping after this step and checkpointing it (Ctrl+C again to abort)...");
    }

    public void Dispose()
    {
        interrupt.Dispose();
        terminate.Dispose();
        source.Dispose();
    }
}
