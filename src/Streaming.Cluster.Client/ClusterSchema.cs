using System.Net.Sockets;
using Npgsql;
using Streaming.Core;

namespace Streaming.Cluster.Client;

/// <summary>Orleans' ADO.NET tables and queries in a PostgreSQL database: created the first time a worker or client meets an empty one.</summary>
public static class ClusterSchema
{
    private static readonly string[] Scripts = ["PostgreSQL-Main.sql", "PostgreSQL-Clustering.sql", "PostgreSQL-Persistence.sql"];

    /// <summary>Creates the tables unless they exist; several processes starting at once take turns (an advisory lock).</summary>
    public static async Task EnsureAsync(ClusterConnection connection, CancellationToken cancellationToken = default)
    {
        if (connection.Postgres is null) return;
        await using var db = new NpgsqlConnection(connection.Postgres);
        try
        {
            await db.OpenAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or SocketException)
        {
            throw new StreamingException($"--cluster {connection}: cannot connect to PostgreSQL ({e.Message})");
        }
        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_lock(861700417)", db))
            await lockCommand.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var probe = new NpgsqlCommand("SELECT to_regclass('orleansstorage') IS NOT NULL AND to_regclass('orleansmembershiptable') IS NOT NULL", db);
            if ((bool)(await probe.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!) return;
            // All three in one transaction: a failure halfway leaves nothing behind to trip the next start.
            await using var transaction = await db.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            foreach (var script in Scripts)
            {
                await using var stream = typeof(ClusterSchema).Assembly.GetManifestResourceStream(script) ?? throw new InvalidOperationException($"{script} is not embedded");
                using var reader = new StreamReader(stream);
                await using var command = new NpgsqlCommand(await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false), db, transaction);
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock(861700417)", db);
            await unlock.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }
}
