namespace Streaming.Perf;

internal static class RepoPaths
{
    /// <summary>The repository root: the nearest folder above the binary that holds Streaming.sln.</summary>
    public static string Root
    {
        get
        {
            foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
            {
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                    if (File.Exists(Path.Combine(dir.FullName, "Streaming.sln"))) return dir.FullName;
            }
            throw new InvalidOperationException("run from inside the repository (Streaming.sln not found above the binary)");
        }
    }

    public static string Samples => Path.Combine(Root, "data-samples");
    public const string FashionMnist = "/usr/share/datasets/fashion-mnist";
}
