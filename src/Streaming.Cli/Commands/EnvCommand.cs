using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Streaming.Cli.Shared;
using Streaming.Models.Compute;
using TorchSharp;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming env</c>: the kernels libtorch uses on this machine, and whether they compute the zoo's models right.</summary>
public static class EnvCommand
{
    public static Command Create()
    {
        var compute = new ComputeFlags();
        var check = new Option<string[]>("--check") { Description = "Check these architectures' float32 passes in both layouts against float64 (e.g. --check resnet18 --check resnet50); 'all' for the whole zoo", AllowMultipleArgumentsPerToken = true };
        var size = new Option<int?>("--image-size") { Description = "With --check: input size (default 32 for the small models, 64 for the ImageNet ones)" };
        var libtorch1x1 = new Option<bool>("--check-libtorch-1x1") { Description = "Check libtorch's own 1x1 convolution (forward, both layouts) at the zoo's channel counts: the kernel the zoo avoids (docs/cpu-kernels.md); it can kill the process with SIGFPE where it is broken" };
        var json = new Option<bool>("--json") { Description = "One JSON document on stdout: {compute, checks, libtorch_1x1}" };
        var command = new Command("env", "Show the compute environment (CPU, kernel ISA per library, libtorch, threads, layout) that run records name; with --check, test the kernels against a float64 reference.")
        {
            check, size, libtorch1x1, json,
        };
        compute.AddTo(command);
        command.SetAction(parse =>
        {
            compute.Apply(parse);
            // One small channels-last convolution (which libtorch hands to oneDNN), a matrix product (MKL) and a softmax
            // (ATen), so that every library has made its choices before they are reported.
            using (var scope = torch.NewDisposeScope())
            {
                var x = Streaming.Models.Zoo.MemoryFormat.ToChannelsLast(torch.ones(2, 16, 8, 8));
                var w = Streaming.Models.Zoo.MemoryFormat.ToChannelsLast(torch.ones(16, 16, 3, 3));
                var y = torch.nn.functional.conv2d(x, w, padding: [1, 1]).flatten(1);
                torch.nn.functional.softmax(y.matmul(torch.ones(1024, 16)), 1).sum().item<float>();
            }
            var record = Streaming.Models.Compute.Kernels.Current();
            var archs = (parse.GetValue(check) ?? []).SelectMany(a => a == "all" ? Streaming.Models.Zoo.ModelZoo.Names : [a]).ToList();
            var checks = new List<LayoutCheck>();
            foreach (var arch in archs)
            {
                var c = LayoutCheck.Run(arch, parse.GetValue(size));
                checks.Add(c);
                if (!parse.GetValue(json)) Console.Error.WriteLine($"checked {arch}");
            }
            var pointwise = new List<LibtorchPointwiseCheck>();
            if (parse.GetValue(libtorch1x1))
            {
                var inv = CultureInfo.InvariantCulture;
                foreach (var (i, o) in LibtorchPointwiseCheck.Shapes)
                {
                    // Said before the kernel runs, and its result right after: where the kernel is broken it can kill the
                    // process, and what was printed shows how far it got.
                    if (!parse.GetValue(json)) Console.Error.WriteLine(string.Create(inv, $"libtorch 1x1 {i} -> {o}, batch 4 at 4x4:"));
                    var c = LibtorchPointwiseCheck.Run(i, o);
                    pointwise.Add(c);
                    if (!parse.GetValue(json)) Console.Error.WriteLine(string.Create(inv, $"    relative error nchw {c.Nchw:E1}, channels-last {c.ChannelsLast:E1}: {(c.Passed ? "ok" : "WRONG")}"));
                }
            }
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new { compute = record, libtorch_1x1 = pointwise.Select(c => new
                {
                    in_channels = c.InChannels, out_channels = c.OutChannels, size = c.Size, nchw = c.Nchw, channels_last = c.ChannelsLast, passed = c.Passed,
                }), checks = checks.Select(c => new
                {
                    arch = c.Arch, image_size = c.ImageSize, batch = c.Batch, logits_nchw = c.LogitsNchw, logits_channels_last = c.LogitsChannelsLast,
                    gradients_nchw = c.GradientsNchw, gradients_channels_last = c.GradientsChannelsLast, tolerance = LayoutCheck.Tolerance, passed = c.Passed,
                    logits_sha256 = c.LogitsSha256,
                }) }, new JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                var inv = CultureInfo.InvariantCulture;
                Console.WriteLine($"cpu              {record.Cpu}, {record.CpuVendor}; caches: {record.CpuCaches}");
                Console.WriteLine($"cpu flags        {string.Join(' ', record.CpuFlags)}");
                Console.WriteLine($"kernel isa       {record.Isa}: oneDNN {record.OnednnIsa}, ATen {record.AtenCpuCapability}, MKL {record.MklCbwr}");
                Console.WriteLine($"libraries        libtorch {record.Libtorch} ({record.Backend}), TorchSharp {record.TorchSharp}{(record.Mkl is null ? "" : ", " + record.Mkl)}");
                Console.WriteLine($"threads, layout  {record.Threads}, channels-last {(record.ChannelsLast ? "on" : "off")}");
                if (checks.Count > 0)
                {
                    Console.WriteLine();
                    Console.WriteLine(string.Create(inv, $"{"arch",-18} {"size",4}  {"logits nchw",11} {"logits nhwc",11} {"grads nchw",10} {"grads nhwc",10}  result (tolerance {LayoutCheck.Tolerance:G})"));
                    foreach (var c in checks)
                        Console.WriteLine(string.Create(inv, $"{c.Arch,-18} {c.ImageSize,4}  {c.LogitsNchw,11:E1} {c.LogitsChannelsLast,11:E1} {c.GradientsNchw,10:E1} {c.GradientsChannelsLast,10:E1}  {(c.Passed ? "ok" : "WRONG")}"));
                }
                if (pointwise.Count > 0)
                {
                    Console.WriteLine();
                    Console.WriteLine(string.Create(inv, $"libtorch's 1x1 convolution (not used by the zoo)   {"nchw",8} {"nhwc",8}  result (tolerance {LayoutCheck.Tolerance:G})"));
                    foreach (var c in pointwise)
                        Console.WriteLine(string.Create(inv, $"  {c.InChannels,5} -> {c.OutChannels,-5} at {c.Size}x{c.Size}, batch 4{"",20} {c.Nchw,8:E1} {c.ChannelsLast,8:E1}  {(c.Passed ? "ok" : "WRONG")}"));
                }
            }
            // libtorch's own 1x1 kernel is reported, not judged: the zoo does not use it.
            return checks.All(c => c.Passed) ? (int)ExitCode.Ok : (int)ExitCode.KernelCheckFailed;
        });
        return command;
    }
}
