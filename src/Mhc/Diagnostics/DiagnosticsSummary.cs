namespace Mhc.Diagnostics;

/// <summary>
/// One line's stability figures in <c>metrics.jsonl</c> (key <c>diagnostics</c>): extremes over the sub-layers of a
/// <see cref="StabilityProfile"/>, plus a short trace of every sub-layer. JSON keys are the snake_case property names.
/// </summary>
public sealed record DiagnosticsSummary
{
    /// <summary>Largest single-layer forward gain.</summary>
    public double MaxForwardGain { get; init; }

    /// <summary>Largest single-layer backward gain.</summary>
    public double MaxBackwardGain { get; init; }

    /// <summary>Largest composite forward gain (token mean).</summary>
    public double MaxCompositeForwardGain { get; init; }

    /// <summary>Largest composite backward gain (token mean).</summary>
    public double MaxCompositeBackwardGain { get; init; }

    /// <summary>Largest composite forward gain of the token-mean matrices.</summary>
    public double MaxCompositeForwardGainOfMean { get; init; }

    /// <summary>Largest composite backward gain of the token-mean matrices.</summary>
    public double MaxCompositeBackwardGainOfMean { get; init; }

    /// <summary>Smallest composite column sum.</summary>
    public double MinCompositeColumnSum { get; init; }

    /// <summary>Largest |row or column sum − 1| of any H_res.</summary>
    public double MaxDsError { get; init; }

    /// <summary>Smallest H_pre entry.</summary>
    public double PreMin { get; init; }

    /// <summary>Largest H_pre entry.</summary>
    public double PreMax { get; init; }

    /// <summary>Smallest H_post entry.</summary>
    public double PostMin { get; init; }

    /// <summary>Largest H_post entry.</summary>
    public double PostMax { get; init; }

    /// <summary>Mean over sub-layers of the adjacent-state cosine.</summary>
    public double MeanStateCosine { get; init; }

    /// <summary>Mean Sinkhorn saturation over the sub-layers of mHC or its variants; null when there are none.</summary>
    public double? Saturation { get; init; }

    /// <summary>Mean over sub-layers of <see cref="SublayerDiagnostics.StreamDiversity"/>.</summary>
    public double MeanStreamDiversity { get; init; }

    /// <summary>Mean over sub-layers of <see cref="SublayerDiagnostics.ResOffDiagonalMass"/>.</summary>
    public double MeanResOffDiagonalMass { get; init; }

    /// <summary>Largest <see cref="SublayerDiagnostics.SignalGain"/>.</summary>
    public double MaxSignalGain { get; init; }

    /// <summary>Smallest <see cref="SublayerDiagnostics.SignalGain"/>.</summary>
    public double MinSignalGain { get; init; }

    /// <summary>Largest <see cref="SublayerDiagnostics.SignalIdentityError"/>.</summary>
    public double MaxSignalIdentityError { get; init; }

    /// <summary>Per sub-layer: stream diversity, off-diagonal mass and the token-mean H_res.</summary>
    public IReadOnlyList<SublayerTrace> Sublayers { get; init; } = [];
}

/// <summary>What <c>metrics.jsonl</c> records of one sub-layer at a diagnosed step.</summary>
/// <param name="Index">Sub-layer index k.</param>
/// <param name="StreamDiversity">See <see cref="SublayerDiagnostics.StreamDiversity"/>.</param>
/// <param name="ResOffDiagonalMass">See <see cref="SublayerDiagnostics.ResOffDiagonalMass"/>.</param>
/// <param name="ResMean">Token-mean H_res <c>[n][n]</c>.</param>
public sealed record SublayerTrace(int Index, double StreamDiversity, double ResOffDiagonalMass, double[][] ResMean);
