namespace Streaming.Core.Decode;

/// <summary>How an image is brought to the target size.</summary>
public enum ResizeMode
{
    /// <summary>Scale so the shorter side matches the target, then crop the center (torchvision's Resize + CenterCrop).</summary>
    ShorterSideCenterCrop,
    /// <summary>Scale both sides directly to the target, ignoring the aspect ratio.</summary>
    Stretch,
}
