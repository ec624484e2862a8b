namespace Streaming.Engine.Pipelines;

/// <summary>
/// Where a stage reads a dataset: the folder of an earlier stage, or a folder in it. Which stage may depend on the
/// settings: U is dedup's when the run has it, else split's.
/// </summary>
internal sealed record StageFolder(Func<PipelineSpec, PipelineStage> Stage, string? Sub = null)
{
    /// <summary>A folder of <paramref name="stage"/>'s (<paramref name="sub"/> in it, or its own).</summary>
    public static StageFolder Of(PipelineStage stage, string? sub = null) => new(_ => stage, sub);

    /// <summary>The folder in a run, once its stage is done.</summary>
    public string In(StageRun run)
    {
        string folder = run.Folder(Stage(run.Spec));
        return Sub is null ? folder : Path.Combine(folder, Sub);
    }
}
