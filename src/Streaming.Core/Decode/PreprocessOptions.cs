namespace Streaming.Core.Decode;

/// <summary>
/// What decode + preprocess produce: a <see cref="Channels"/> x <see cref="Height"/> x <see cref="Width"/>
/// float tensor, normalized per channel as (x / 255 - mean) / std. Validated when built.
/// </summary>
public sealed record PreprocessOptions
{
    public PreprocessOptions(int width, int height, int channels, ResizeMode mode = ResizeMode.ShorterSideCenterCrop,
        float[]? mean = null, float[]? std = null, bool scaledDecode = true)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"target size must be positive, got {width}x{height}");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), $"channels must be 1 or 3, got {channels}");
        mean ??= channels == 3 ? ImageNetMean : [0.5f];
        std ??= channels == 3 ? ImageNetStd : [0.5f];
        if (mean.Length != channels || std.Length != channels)
            throw new ArgumentException($"mean and std need {channels} values each, got {mean.Length} and {std.Length}");
        foreach (var s in std)
            if (!(s > 0)) throw new ArgumentException("std values must be positive");
        Width = width;
        Height = height;
        Channels = channels;
        Mode = mode;
        Mean = (float[])mean.Clone();
        Std = (float[])std.Clone();
        ScaledDecode = scaledDecode;
    }

    public static float[] ImageNetMean => [0.485f, 0.456f, 0.406f];
    public static float[] ImageNetStd => [0.229f, 0.224f, 0.225f];

    public int Width { get; }
    public int Height { get; }
    public int Channels { get; }
    public ResizeMode Mode { get; }
    public float[] Mean { get; }
    public float[] Std { get; }
    /// <summary>Use the codec's own downscaling (JPEG DCT scaling) when the target is much smaller than the source.</summary>
    public bool ScaledDecode { get; }

    /// <summary>Number of floats one image occupies.</summary>
    public int TensorLength => Channels * Height * Width;
}
