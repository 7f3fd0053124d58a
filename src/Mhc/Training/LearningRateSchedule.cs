namespace Mhc.Training;

/// <summary>Learning rate as a function of the optimizer step.</summary>
static class LearningRateSchedule
{
    /// <summary>Factors and positions (fractions of training) of the mHC paper's step schedule.</summary>
    public static readonly (double At, double Factor)[] StepDecay = [(0.8, 0.316), (0.9, 0.1)];

    /// <summary>
    /// The rate for 0-based step <paramref name="step"/>: linear warm-up to the peak, then either cosine decay
    /// to <c>min_lr_ratio · peak</c> or the step schedule (×0.316 from 80%, ×0.1 from 90% of training).
    /// </summary>
    /// <param name="options">Peak, warm-up, schedule and length.</param>
    /// <param name="step">Optimizer step, 0-based.</param>
    public static double At(TrainingOptions options, long step)
    {
        ArgumentNullException.ThrowIfNull(options);
        var peak = options.LearningRate;
        if (step < options.WarmupSteps) return peak * (step + 1) / options.WarmupSteps;
        if (options.Schedule == "step")
        {
            var fraction = (double)step / options.Steps;
            return peak * StepDecay.Where(d => fraction >= d.At).Select(d => d.Factor).DefaultIfEmpty(1).Last();
        }
        var progress = Math.Min(1, (double)(step - options.WarmupSteps) / Math.Max(1, options.Steps - options.WarmupSteps));
        var floor = peak * options.MinLrRatio;
        return floor + (peak - floor) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}
