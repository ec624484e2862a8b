using Streaming.Core.Ingest;
using Streaming.Models.Training;
using Xunit;
using static TorchSharp.torch;

namespace Streaming.Tests;

/// <summary>
/// The seam data-parallel training plugs into (<see cref="IProcessGroup"/>): the trainer calls its hooks where a
/// group needs them, and a rank other than 0 trains its share and writes nothing.
/// </summary>
[Collection(nameof(ProcessState))]
public class ProcessGroupTests : IAsyncLifetime
{
    private readonly TempDir _tmp = new();
    private string Data => _tmp.Sub("data");

    public async ValueTask InitializeAsync() =>
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), Data, new IngestOptions { Writer = new() { ShardSize = 100 } });

    public ValueTask DisposeAsync()
    {
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }

    private TrainOptions Options(string output) => new()
    {
        Data = Data,
        Arch = "cnn-small",
        Out = output,
        Images = 32 * 4,
        BatchSize = 32,
        BaseLr = 0.2,
        Schedule = ScheduleKind.Cosine,
        Seed = 3,
        Threads = 2,
    };

    /// <summary>Records the hooks as they are called; rank and share as given; the other ranks, if any, agree with this one.</summary>
    private sealed class RecordingGroup(int rank, int size) : IProcessGroup
    {
        public List<string> Calls { get; } = [];
        public int Rank => rank;
        public int Size => size;

        public (int Start, int Count) ShareOf(int batchRows)
        {
            int each = batchRows / size;
            Calls.Add($"share {each}");
            return (rank * each, each);
        }

        public void BroadcastState(nn.Module model, Sgd optimizer) => Calls.Add("broadcast");

        // Between backward and the update: the gradients are there to average.
        public float AverageGradients(nn.Module model, float loss)
        {
            Calls.Add(model.parameters().Any(p => p.grad is not null) ? "average" : "average without gradients");
            return loss;
        }

        public IReadOnlyList<string> Gather(string mine) => Enumerable.Repeat(mine, size).ToList();

        public long Broadcast(long value) => value;
    }

    [Trait(Traits.Asserts, Traits.BitIdentity)]
    [Fact]
    public async Task OneProcess_HooksAreCalledInOrder_AndTheWeightsAreThoseOfAnOrdinaryRun()
    {
        var group = new RecordingGroup(0, 1);
        var result = await Trainer.RunAsync(Options(_tmp.Sub("group")), null, null, group);
        await Trainer.RunAsync(Options(_tmp.Sub("plain")));

        Assert.Equal(4, result.Steps);
        Assert.Equal(["broadcast", .. Enumerable.Repeat("average", 4)], group.Calls);
        Assert.Equal(File.ReadAllBytes(Path.Combine(_tmp.Sub("plain"), "model.safetensors")), File.ReadAllBytes(result.ModelPath));
    }

    [Fact]
    public async Task AnotherRank_TrainsItsShare_AndWritesAndLogsNothing()
    {
        var group = new RecordingGroup(1, 2);
        var log = new List<string>();
        string output = _tmp.Sub("rank1");
        var result = await Trainer.RunAsync(Options(output), null, log.Add, group);

        Assert.Equal(4, result.Steps);
        Assert.Equal(["broadcast", "share 16", .. Enumerable.Repeat("average", 4)], group.Calls);
        Assert.Empty(log);
        Assert.False(Directory.Exists(output), $"rank 1 wrote into {output}");
    }
}
