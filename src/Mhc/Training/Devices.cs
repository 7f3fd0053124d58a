using System.Globalization;
using static TorchSharp.torch;

namespace Mhc.Training;

/// <summary>The devices a model can run on, by the names the config and the command line use: <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>.</summary>
public static class Devices
{
    /// <summary>Whether <paramref name="name"/> names a device (whether or not this machine has it).</summary>
    /// <param name="name">A device name.</param>
    public static bool IsValid(string? name) =>
        name is "cpu" or "cuda" || (name is not null && name.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(name.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out _));

    /// <summary>
    /// The device called <paramref name="name"/>; <see cref="ArgumentException"/> when the name is not one, or when CUDA is
    /// asked for and TorchSharp has none here (the CPU bundle, or no GPU visible).
    /// </summary>
    /// <param name="name">A device name.</param>
    public static Device Resolve(string name)
    {
        if (!IsValid(name))
            throw new ArgumentException($"device = '{name}' is unknown: allowed cpu, cuda, cuda:N.", nameof(name));
        if (name == "cpu") return CPU;
        if (!cuda.is_available())
            throw new ArgumentException($"device = '{name}': CUDA is not available here (TorchSharp's CPU bundle is in use, or no GPU is visible).", nameof(name));
        var index = name == "cuda" ? 0 : int.Parse(name.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture);
        if (index >= cuda.device_count())
            throw new ArgumentException($"device = '{name}': there are {cuda.device_count()} CUDA devices (cuda:0…cuda:{cuda.device_count() - 1}).", nameof(name));
        return new Device(TorchSharp.DeviceType.CUDA, index);
    }
}
