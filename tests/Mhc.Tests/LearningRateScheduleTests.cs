using Mhc.Training;

namespace Mhc.Tests;

public class LearningRateScheduleTests
{
    [Fact]
    public void Cosine_warms_up_linearly_then_decays_to_the_floor()
    {
        var o = new TrainingOptions { Steps = 110, WarmupSteps = 10, LearningRate = 1e-3, MinLrRatio = 0.1 };
        Assert.Equal(1e-4, LearningRateSchedule.At(o, 0), 12);
        Assert.Equal(5e-4, LearningRateSchedule.At(o, 4), 12);
        Assert.Equal(1e-3, LearningRateSchedule.At(o, 10), 12);
        // Halfway through the decay: floor + (peak − floor)/2.
        Assert.Equal(1e-4 + 0.9e-3 * 0.5, LearningRateSchedule.At(o, 60), 12);
        Assert.Equal(1e-4 + 0.9e-3 * 0.5 * (1 + Math.Cos(Math.PI * 0.25)), LearningRateSchedule.At(o, 35), 12);
        Assert.Equal(1e-4, LearningRateSchedule.At(o, 110), 12);
    }

    [Fact]
    public void Step_schedule_drops_at_80_and_90_percent()
    {
        var o = new TrainingOptions { Steps = 100, WarmupSteps = 0, LearningRate = 1.0, Schedule = "step" };
        Assert.Equal(1.0, LearningRateSchedule.At(o, 79));
        Assert.Equal(0.316, LearningRateSchedule.At(o, 80));
        Assert.Equal(0.316, LearningRateSchedule.At(o, 89));
        Assert.Equal(0.1, LearningRateSchedule.At(o, 90));
        Assert.Equal(0.1, LearningRateSchedule.At(o, 99));
    }
}
