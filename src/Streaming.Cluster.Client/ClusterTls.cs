using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Orleans.Connections.Security;
using Streaming.Core;

namespace Streaming.Cluster.Client;

/// <summary>
/// Mutual TLS for a cluster: this node's certificate and key, and the cluster's CA. Every connection, silo to silo and
/// client to gateway, presents a certificate and accepts only one signed by the CA (names are not checked: the CA is
/// what admits a node). A refusal is logged in one line on the side that refuses.
/// </summary>
public sealed class ClusterTls
{
    /// <summary>The name both sides agree on for SNI; certificates are checked against the CA, not against it.</summary>
    private const string TargetHost = "streaming-cluster";

    private ClusterTls(X509Certificate2 certificate, X509Certificate2 authority)
    {
        Certificate = certificate;
        Authority = authority;
    }

    public X509Certificate2 Certificate { get; }
    public X509Certificate2 Authority { get; }

    /// <summary>Where refusals are logged (set once the host is built; until then, standard error).</summary>
    public ILogger? Log { get; set; }

    /// <summary>The TLS of <c>--tls-cert</c>, <c>--tls-key</c> and <c>--tls-ca</c> (PEM files): all three, or none (null).</summary>
    public static ClusterTls? From(string? cert, string? key, string? ca)
    {
        if (cert is null && key is null && ca is null) return null;
        if (cert is null || key is null || ca is null)
            throw new StreamingException("TLS needs all three of --tls-cert, --tls-key and --tls-ca (PEM files; 'streaming cluster certs' makes a set)");
        foreach (var (file, flag) in new[] { (cert, "--tls-cert"), (key, "--tls-key"), (ca, "--tls-ca") })
            if (!File.Exists(file)) throw new StreamingException($"{flag} {file}: not found");
        try
        {
            var certificate = X509Certificate2.CreateFromPemFile(cert, key);
            var authority = X509CertificateLoader.LoadCertificateFromFile(ca);
            return new ClusterTls(certificate, authority);
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw new StreamingException($"--tls-cert {cert} / --tls-key {key} / --tls-ca {ca}: not a PEM certificate and its key ({e.Message})");
        }
    }

    /// <summary>Sets <paramref name="options"/> for mutual TLS under this cluster's CA.</summary>
    public void Configure(TlsOptions options, string side)
    {
        options.LocalCertificate = Certificate;
        options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.RemoteCertificateValidation = (remote, _, _) => Admits(remote, side);
        options.OnAuthenticateAsClient = (_, ssl) => ssl.TargetHost = TargetHost;
    }

    /// <summary>Whether <paramref name="remote"/> is signed by the cluster's CA; a refusal is logged in one line.</summary>
    public bool Admits(X509Certificate2? remote, string side)
    {
        string? why = remote is null ? "it presented no certificate" : Refusal(remote);
        if (why is null) return true;
        string line = $"{side} refused a peer: {why}; only certificates signed by this cluster's CA ({Authority.Subject}) are admitted";
        if (Log is { } log) log.LogWarning("{Refusal}", line);
        else Console.Error.WriteLine($"warn: {line}");
        return false;
    }

    /// <summary>Null when <paramref name="remote"/> chains to the cluster's CA (and is valid now), else why not.</summary>
    internal string? Refusal(X509Certificate2 remote)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain.Build(remote)) return null;
        var status = chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct();
        return $"its certificate ({remote.Subject}, issued by {remote.Issuer}) is not signed by this cluster's CA ({string.Join("; ", status)})";
    }
}
