using System.CommandLine;
using System.Globalization;
using Streaming.Cli.Shared;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Decode;
using Streaming.Core.Ingest;
using Streaming.Core.Shards;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming ingest</c>: any supported image collection into a dataset of image shards.</summary>
public static class IngestCommand
{
    public static Command Create()
    {
        var source = new Option<string>("--source", "-s") { Description = "Input: idx images file, image folder, WebDataset tar(s), Parquet file(s) or a list file", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Dataset folder to create", Required = true };
        var format = new Option<SourceFormat>("--format") { Description = "Input format; auto detects it from the path", DefaultValueFactory = _ => SourceFormat.Auto };
        var noVerify = new Option<bool>("--no-verify") { Description = "Skip the decode check of every image (faster; bad images then reach the shards)" };
        var shardSize = new Option<int>("--shard-size") { Description = "Images per shard", DefaultValueFactory = _ => DatasetWriterOptions.DefaultShardSize };
        var compression = new Option<ShardCompression>("--compression") { Description = "Parquet compression of the shards", DefaultValueFactory = _ => ShardCompression.Snappy };
        var workers = new Option<int>("--workers") { Description = "Parallel encode/verify workers; 0: all cores (the output does not depend on it)", DefaultValueFactory = _ => 0 };
        var maxPixels = new Option<long>("--max-pixels") { Description = "Quarantine images whose header declares more pixels than this", DefaultValueFactory = _ => ImageDecoder.DefaultMaxPixels };
        var classNames = new Option<string?>("--class-names") { Description = "Class names, index = label: comma-separated, or @file with one name a line" };
        var imageColumn = new Option<string?>("--image-column") { Description = "Parquet: the image column (binary, or a struct with 'bytes')" };
        var labelColumn = new Option<string?>("--label-column") { Description = "Parquet: the integer label column" };
        var name = new Option<string?>("--name") { Description = "Dataset name in the manifest (default: the output folder's name)" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the output folder if it exists" };
        var tagsColumn = new Option<string?>("--tags-column") { Description = "Parquet: the column of weak labels, a list of class indices or names (default: 'tags' when present)" };
        var tags = new Option<bool>("--tags") { Description = "Give the dataset a tags column even if the source's first samples have no tags (WebDataset .tags/.json members are looked for in the first 1,000 samples)" };
        var idPrefix = new Option<string?>("--id-prefix") { Description = "Put this before every image id (e.g. yfcc/), so that collections ingested apart never share ids" };

        var command = new Command("ingest", "Turn an image collection into a dataset of Parquet image shards, with dedup, decode checks and a quarantine list.")
        {
            source, output, format, noVerify, shardSize, compression, workers, maxPixels, classNames, imageColumn, labelColumn, name, overwrite, idPrefix, tagsColumn, tags,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var names = ParseClassNames(parse.GetValue(classNames));
            var src = ImageSource.Open(parse.GetValue(source)!, parse.GetValue(format), names, parse.GetValue(imageColumn), parse.GetValue(labelColumn), tagsColumn: parse.GetValue(tagsColumn));
            var options = new IngestOptions
            {
                Verify = !parse.GetValue(noVerify),
                Workers = parse.GetValue(workers) is > 0 and var w ? w : Environment.ProcessorCount,
                MaxPixels = parse.GetValue(maxPixels),
                Name = parse.GetValue(name) ?? "",
                IdPrefix = parse.GetValue(idPrefix) ?? "",
                Writer = new DatasetWriterOptions { ShardSize = parse.GetValue(shardSize), Compression = parse.GetValue(compression), Overwrite = parse.GetValue(overwrite), Tags = parse.GetValue(tags) },
            };
            string outDir = parse.GetValue(output)!;
            Console.Error.WriteLine($"ingesting {parse.GetValue(source)} ({src.Format.ToString().ToLowerInvariant()}) into {outDir}");
            var console = new ConsoleProgress();
            var progress = new Progress<IngestProgress>(p => console.Report(string.Create(CultureInfo.InvariantCulture,
                $"  {p.Read:N0} read, {p.Written:N0} written, {p.Duplicates:N0} duplicates, {p.Quarantined:N0} quarantined, {p.ImagesPerSecond:N0} images/s")));
            IngestResult result;
            try
            {
                result = await Ingestor.RunAsync(src, outDir, options, progress, cancellationToken);
            }
            finally
            {
                console.Done();
            }
            var m = result.Manifest;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ingested {m.Rows:N0} images into {outDir}: {m.Shards.Count} shards, {m.Classes.Count} classes, {m.Labeled:N0} labeled, {m.Unlabeled:N0} unlabeled{(m.Tagged is long t ? $", {t:N0} with tags" : "")}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  read {result.Read:N0} in {result.Elapsed.TotalSeconds:N1} s ({result.ImagesPerSecond:N0} images/s); dropped {result.Duplicates:N0} exact duplicates; quarantined {m.Quarantined:N0}{(result.Ignored > 0 ? $"; ignored {result.Ignored:N0} non-image files" : "")}"));
            foreach (var (reason, n) in m.QuarantineReasons)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    {n,8:N0}  {reason}"));
            if (m.Quarantined > 0) Console.WriteLine($"  quarantine list: {Path.Combine(outDir, DatasetWriter.QuarantineFileName)}");
            return (int)ExitCode.Ok;
        });
        return command;
    }

    internal static IReadOnlyList<string>? ParseClassNames(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        if (value.StartsWith('@'))
        {
            string file = value[1..];
            if (!File.Exists(file)) throw new StreamingException($"--class-names {value}: file not found");
            return File.ReadAllLines(file).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        }
        return value.Split(',').Select(s => s.Trim()).ToList();
    }
}
