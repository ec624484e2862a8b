namespace Streaming.Core.Decode;

/// <summary>A rectangle of an image in fractions of its width and height (0-1), for random-resized-crop.</summary>
public readonly record struct CropRegion(double X, double Y, double Width, double Height)
{
    public static CropRegion Whole => new(0, 0, 1, 1);
}
