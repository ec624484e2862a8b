using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Streaming.Core;
using Streaming.Core.Loading;
using Streaming.Models.Evaluation;
using Streaming.Models.IO;
using Streaming.Models.Loading;
using static TorchSharp.torch;

namespace Streaming.Models.Training;

/// <summary>
/// The steps of a run, from where it resumes to the end of its budget, epoch by epoch in the loader's order: the
/// schedule's rate for each, a metrics line every so many images, evaluation, checkpoints and progress on schedule.
/// </summary>
internal sealed class TrainingLoop
{
    private readonly TrainOptions _o;
    private readonly TrainingData _data;
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly ModelSpec _spec;
    private readonly Sgd _sgd;
    private readonly Device _device;
    private readonly RunFolder _folder;
    private readonly Action<string> _log;
    private readonly TrainStep _trainStep;
    private readonly BatchLoader _loader;
    private readonly LrSchedule _schedule;
    private readonly long _batch, _totalImages, _totalSteps, _stepsPerEpoch;
    private readonly Stopwatch _clock = new();
    private JsonElement _config;
    private long _step, _startStep;
    private double _ema = double.NaN;
    private double? _lastTop1;
    private EvalResult? _lastEval;
    private TimeSpan _lastReport = TimeSpan.Zero;

    /// <summary>A loop over <paramref name="data"/> (with <paramref name="soft"/> targets, when given) that trains <paramref name="model"/> as <paramref name="o"/> says.</summary>
    public TrainingLoop(TrainOptions o, TrainingData data, nn.Module<Tensor, Tensor> model, ModelSpec spec, Sgd sgd, Device device,
        SoftTargets? soft, IProcessGroup group, RunFolder folder, Action<string> log)
    {
        (_o, _data, _model, _spec, _sgd, _device, _folder, _log) = (o, data, model, spec, sgd, device, folder, log);
        _trainStep = new TrainStep(model, sgd, device, group);
        _loader = new BatchLoader(o.Data, new LoaderOptions
        {
            Preprocess = spec.Preprocess(),
            Augment = o.Augment!.Value ? AugmentationOptions.Default(spec.ImageSize) : AugmentationOptions.None,
            Seed = o.Seed,
            BatchSize = o.BatchSize,
            Workers = o.DecodeWorkers,
            ShuffleBuffer = o.ShuffleBuffer,
            SoftTargets = soft,
            Share = group.Size > 1 ? group.ShareOf(o.BatchSize) : null,
        });
        (_batch, _totalImages) = (o.BatchSize, o.Images!.Value);
        _totalSteps = (_totalImages + _batch - 1) / _batch;
        _stepsPerEpoch = _loader.BatchesPerEpoch;
        _schedule = new LrSchedule(o.Schedule!.Value, LrSchedule.Scaled(o.BaseLr!.Value, o.BatchSize), _totalImages, o.WarmupImages!.Value);
    }

    /// <summary>Trains from <paramref name="from"/> to the end of the budget and writes the run's last files.</summary>
    public async Task<TrainResult> RunAsync(ResumePoint from, IProgress<TrainProgress>? progress, CancellationToken cancellationToken)
    {
        _folder.WriteConfig(_o);
        _config = JsonSerializer.SerializeToElement(_o);
        _step = from.Step;
        _folder.OpenMetrics(_step * _batch);
        Announce(from);
        _clock.Start();
        _startStep = _step;
        ModelSetup.TrainMode(_model, _o.FreezeBackbone);
        while (_step < _totalSteps) await RunEpochAsync(progress, cancellationToken).ConfigureAwait(false);

        string modelPath = await _folder.FinishAsync(_model, _spec, _lastEval, _o.Arch, cancellationToken).ConfigureAwait(false);
        double overall = (_step - _startStep) * _batch / Math.Max(1e-9, _clock.Elapsed.TotalSeconds);
        return new TrainResult(modelPath, _step, _step * _batch, _ema, _clock.Elapsed, overall, _lastEval, _startStep > 0);
    }

    private void Announce(ResumePoint from)
    {
        _log(string.Create(CultureInfo.InvariantCulture,
            $"training {_o.Arch} on {_data.Manifest.Labeled:N0} images ({_spec.NumClasses} classes, {_spec.InChannels}x{_spec.ImageSize}x{_spec.ImageSize}) for {_totalImages:N0} images = {_totalSteps:N0} steps of {_batch}; {_schedule.Kind} schedule, peak lr {_schedule.PeakLr:G4}; {TorchDevice.Describe()}; kernels: {_o.Compute}"));
        if (_o.RecipeNote is string note) _log(note);
        if (_o.Distributed is { } d)
            _log(string.Create(CultureInfo.InvariantCulture, $"data-parallel over {d.Ranks} ranks ({string.Join(", ", d.Hosts.Distinct())}): each trains on B/N = {d.BatchPerRank} images a step of the global batch of {_batch}; BatchNorm statistics per rank (over its {d.BatchPerRank} images); gradients averaged by allreduce"));
        if (_step > 0) _log($"resumed from {from.Checkpoint} at step {_step:N0}");
    }

    /// <summary>The rest of the current epoch, or of the budget when it ends first.</summary>
    private async Task RunEpochAsync(IProgress<TrainProgress>? progress, CancellationToken cancellationToken)
    {
        long epoch = _step / _stepsPerEpoch;
        await foreach (var b in _loader.ReadEpochAsync(epoch, _step % _stepsPerEpoch, cancellationToken).ConfigureAwait(false))
        {
            double lr = _schedule.At(_step * _batch);
            double loss;
            using (b) loss = _trainStep.Run(b, lr);
            if (!double.IsFinite(loss))
                throw new StreamingException($"training diverged at step {_step} (loss {loss}); lower --lr");
            _ema = double.IsNaN(_ema) ? loss : 0.98 * _ema + 0.02 * loss;
            _step++;
            await AfterStepAsync(epoch, lr, progress, cancellationToken).ConfigureAwait(false);
            if (_step >= _totalSteps) break;
        }
    }

    /// <summary>What is due after a step: the metrics line, evaluation, a checkpoint, progress (each on its own schedule, all at the end).</summary>
    private async Task AfterStepAsync(long epoch, double lr, IProgress<TrainProgress>? progress, CancellationToken cancellationToken)
    {
        long step = _step, seen = step * _batch;
        bool last = step == _totalSteps;
        double rate = (step - _startStep) * _batch / Math.Max(1e-9, _clock.Elapsed.TotalSeconds);
        if (Crossed(seen, _o.LogEveryImages!.Value) || last)
            await _folder.WriteMetricAsync(new { type = "train", step, images = seen, epoch, loss = Math.Round(_ema, 5), lr, images_per_s = Math.Round(rate, 1) }).ConfigureAwait(false);
        if (_o.EvalData is not null && (Crossed(seen, _o.EvalEvery!.Value) || last))
            await EvaluateAsync(seen, cancellationToken).ConfigureAwait(false);
        if (Crossed(seen, _o.CheckpointEvery!.Value) || last)
            _folder.SaveCheckpoint(_model, _spec, _sgd, new CheckpointState(step, seen, step / _stepsPerEpoch, step % _stepsPerEpoch, _totalSteps, _o.Threads!.Value, _config));
        if (progress is not null && (_clock.Elapsed - _lastReport > TimeSpan.FromMilliseconds(500) || last))
        {
            _lastReport = _clock.Elapsed;
            progress.Report(new TrainProgress(step, _totalSteps, seen, _totalImages, _ema, lr, rate, _lastTop1));
        }
    }

    private async Task EvaluateAsync(long seen, CancellationToken cancellationToken)
    {
        _lastEval = await Evaluator.EvaluateAsync(_model, _spec, _o.EvalData!, _device, 256, _o.DecodeWorkers, _o.Out, cancellationToken).ConfigureAwait(false);
        _lastTop1 = _lastEval.Top1;
        await _folder.WriteMetricAsync(new { type = "eval", step = _step, images = seen, top1 = _lastEval.Top1, top5 = _lastEval.Top5, loss = _lastEval.Loss }).ConfigureAwait(false);
        ModelSetup.TrainMode(_model, _o.FreezeBackbone);
    }

    /// <summary>Whether the last batch took the images seen past a multiple of <paramref name="every"/>.</summary>
    private bool Crossed(long seen, long every) => every > 0 && seen / every > (seen - _batch) / every;
}
