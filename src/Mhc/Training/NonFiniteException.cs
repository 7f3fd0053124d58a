namespace Mhc.Training;

/// <summary>A NaN or infinity appeared in the loss or the gradients; the run stopped at that step.</summary>
public sealed class NonFiniteException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="step">Step (1-based) at which it appeared.</param>
    /// <param name="quantity">What was not finite (<c>loss</c>, <c>gradient norm</c>).</param>
    /// <param name="value">The value.</param>
    /// <param name="lastCheckpoint">The checkpoint a resume would start from, if any.</param>
    public NonFiniteException(long step, string quantity, double value, string? lastCheckpoint)
        : base($"step {step}: the {quantity} is {value}; training stopped. " +
               (lastCheckpoint is null ? "No checkpoint was written yet." : $"The last good checkpoint is '{lastCheckpoint}'.") +
               " Lower the learning rate, or set training.skip_nonfinite to skip such steps.")
    {
        Step = step;
        Quantity = quantity;
    }

    /// <summary>Step (1-based) at which the fault appeared.</summary>
    public long Step { get; }

    /// <summary>What was not finite.</summary>
    public string Quantity { get; }
}
