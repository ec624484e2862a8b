using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;
using Orleans.Serialization;
using Orleans.Storage;
using Streaming.Core;
using Streaming.Cluster.Client;

namespace Streaming.Cluster;

/// <summary>The silo's ports and the address it advertises.</summary>
public sealed record SiloEndpoints(int SiloPort = 11111, int GatewayPort = 30000, IPAddress? Advertise = null);

/// <summary>How silos and clients of the engine's cluster are configured: one place for clustering, storage and identity.</summary>
public static class ClusterHosting
{
    public const string StorageName = "cluster";

    /// <summary>A silo: membership and state from <paramref name="connection"/>, listening on <paramref name="endpoints"/>.</summary>
    public static void ConfigureSilo(ISiloBuilder silo, ClusterConnection connection, SiloEndpoints endpoints)
    {
        silo.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = ClusterClient.ClusterId;
            o.ServiceId = ClusterClient.ServiceId;
        });
        var address = AdvertisedAddress(connection, endpoints);
        connection.RequireTlsBeyondLoopback("worker", address);
        if (connection.Tls is { } tls) silo.UseTls(tls.Certificate, o => tls.Configure(o, "silo"));
        if (connection.IsLocalhost)
        {
            silo.UseLocalhostClustering(endpoints.SiloPort, endpoints.GatewayPort, null, ClusterClient.ServiceId, ClusterClient.ClusterId);
            AddFolderStorage(silo, connection.StateFolder!);
        }
        else
        {
            silo.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = connection.Postgres;
            });
            silo.AddAdoNetGrainStorage(StorageName, ob => ob.Configure<Serializer>((o, serializer) =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = connection.Postgres;
                o.GrainStorageSerializer = new OrleansGrainStorageSerializer(serializer);
            }));
            silo.ConfigureEndpoints(address, endpoints.SiloPort, endpoints.GatewayPort, listenOnAnyHostAddress: !address.Equals(IPAddress.Loopback));
        }
        ConfigureFailureDetection(silo.Services);
    }

    /// <summary>The address a silo advertises: as given, else a routable one when the database is elsewhere, else loopback.</summary>
    public static IPAddress AdvertisedAddress(ClusterConnection connection, SiloEndpoints endpoints) =>
        endpoints.Advertise ?? (connection.RemoteDatabase ? RoutableAddress() : IPAddress.Loopback);

    /// <summary>Grain state in a folder (<see cref="FolderGrainStorage"/>): the localhost cluster and in-process tests.</summary>
    public static void AddFolderStorage(ISiloBuilder silo, string folder) =>
        silo.Services.AddKeyedSingleton<IGrainStorage>(StorageName, (sp, _) => new FolderGrainStorage(folder, sp.GetRequiredService<Serializer>()));

    /// <summary>
    /// A dead silo (kill -9, lost network) is declared dead within about 10 s rather than Orleans' default of about a
    /// minute, so that its grains come back elsewhere soon; leases expire on their own clock either way.
    /// </summary>
    public static void ConfigureFailureDetection(IServiceCollection services)
    {
        services.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromSeconds(2);
            o.NumMissedProbesLimit = 2;
            o.NumVotesForDeathDeclaration = 1;
            o.DeathVoteExpirationTimeout = TimeSpan.FromSeconds(30);
            o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(5);
        });
        // A call to a silo that died before it was declared dead waits this long, not Orleans' default 30 s.
        services.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));
    }

    /// <summary>This machine's first up, non-loopback IPv4 address (what other machines reach it by).</summary>
    public static IPAddress RoutableAddress() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a)) ?? IPAddress.Loopback;

    /// <summary>A TCP port nothing listens on now.</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

}

/// <summary>
/// Grain state as files in one folder, one a grain, written atomically (fsync, rename) with Orleans' own serializer,
/// with an ETag check so that two activations cannot overwrite each other. For the one-process localhost cluster and
/// in-process tests; a real cluster keeps its state in PostgreSQL.
/// </summary>
public sealed class FolderGrainStorage(string folder, Serializer serializer) : IGrainStorage
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    private string PathOf(string stateName, GrainId grainId) =>
        Path.Combine(folder, $"{stateName}-{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(grainId.ToString())))[..24]}.bin");

    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        string path = PathOf(stateName, grainId);
        if (!File.Exists(path))
        {
            grainState.RecordExists = false;
            grainState.ETag = null;
            return;
        }
        var bytes = await File.ReadAllBytesAsync(path).ConfigureAwait(false);
        grainState.State = serializer.Deserialize<T>(bytes);
        grainState.ETag = Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];
        grainState.RecordExists = true;
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        string path = PathOf(stateName, grainId);
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            Directory.CreateDirectory(folder);
            if (File.Exists(path))
            {
                string etag = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(path).ConfigureAwait(false)))[..16];
                if (etag != grainState.ETag) throw new InconsistentStateException($"{path}: written by another activation", etag, grainState.ETag ?? "");
            }
            var bytes = serializer.SerializeToArray(grainState.State);
            AtomicFile.Write(path, s => s.Write(bytes));
            grainState.ETag = Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];
            grainState.RecordExists = true;
        }
        finally
        {
            _gate.Release();
        }
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        File.Delete(PathOf(stateName, grainId));
        grainState.ETag = null;
        grainState.RecordExists = false;
        return Task.CompletedTask;
    }
}

