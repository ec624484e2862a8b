using System.Diagnostics;
using Streaming.Models.Training;
using Streaming.Models.Loading;
using Streaming.Models.Zoo;
using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Perf;

/// <summary>
/// resnet20 training and inference images/s on random 1x28x28 inputs, the same protocol as
/// perf/python/torch_resnet20_bench.py, so the two compare on one machine and thread count.
/// </summary>
internal static class ModelThroughput
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 0 ? int.Parse(args[0]) : 2;
        int batch = args.Length > 1 ? int.Parse(args[1]) : 128;
        double seconds = args.Length > 2 ? double.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 20;
        string arch = args.Length > 3 ? args[3] : "resnet20";
        // The engine's layout (channels-last unless STREAMING_CHANNELS_LAST=0), or forced: nhwc | nchw.
        if (args.Length > 4) MemoryFormat.ChannelsLast = args[4] switch { "nhwc" => true, "nchw" => false, _ => throw new ArgumentException("layout: nhwc or nchw") };
        set_num_threads(threads);
        manual_seed(0);
        using var model = ModelZoo.Create(arch, 10, 1);
        Console.WriteLine($"TorchSharp {torch.__version__}, threads {get_num_threads()}, {arch} params {model.parameters().Sum(p => p.numel()):N0}, {(MemoryFormat.ChannelsLast ? "channels-last" : "NCHW")}");
        using var sgd = new Sgd(model, 0.9, 1e-4);
        MemoryFormat.Apply(model);
        using var x = MemoryFormat.Input(randn(batch, 1, 28, 28));
        using var y = randint(0, 10, [batch], dtype: int64);
        model.train();
        double train = Timed(() =>
        {
            using var scope = NewDisposeScope();
            sgd.ZeroGrad();
            nn.functional.cross_entropy(model.forward(x), y).backward();
            sgd.Step(0.05);
        }, seconds, batch);
        // Where a training step's time goes (forward, backward, optimizer), over 10 steps.
        var parts = new double[3];
        for (int i = 0; i < 10; i++)
        {
            using var scope = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            sgd.ZeroGrad();
            var loss = nn.functional.cross_entropy(model.forward(x), y);
            loss.item<float>();
            parts[0] += sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            loss.backward();
            parts[1] += sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            sgd.Step(0.05);
            parts[2] += sw.Elapsed.TotalMilliseconds;
        }
        Console.WriteLine($"per step: forward {parts[0] / 10:F1} ms, backward {parts[1] / 10:F1} ms, SGD {parts[2] / 10:F1} ms");
        using var xi = MemoryFormat.Input(randn(256, 1, 28, 28));
        model.eval();
        double infer = Timed(() =>
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            model.forward(xi);
        }, seconds, 256);
        string layout = MemoryFormat.ChannelsLast ? "channels-last" : "NCHW";
        Console.WriteLine($"| TorchSharp {torch.__version__}, {layout} | {threads} | train batch {batch} | {train:N0} images/s |");
        Console.WriteLine($"| TorchSharp {torch.__version__}, {layout} | {threads} | inference batch 256 | {infer:N0} images/s |");
    }

    private static double Timed(Action step, double seconds, int batch)
    {
        for (int i = 0; i < 3; i++) step();
        var sw = Stopwatch.StartNew();
        long n = 0;
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            step();
            n += batch;
        }
        return n / sw.Elapsed.TotalSeconds;
    }
}
