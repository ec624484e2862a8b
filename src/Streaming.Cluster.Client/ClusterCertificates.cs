using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Streaming.Core;

namespace Streaming.Cluster.Client;

/// <summary>
/// A CA and certificates signed by it, for trying a TLS cluster out (<c>streaming cluster certs</c>): ECDSA P-256, made
/// with System.Security.Cryptography, written as PEM. Each node's certificate serves both ends of mutual TLS (server and
/// client authentication) and names the node, <c>localhost</c> and <c>127.0.0.1</c> (so one can also be PostgreSQL's
/// server certificate for <c>SSL Mode=VerifyFull</c> on this machine), plus any hosts given.
/// </summary>
public static class ClusterCertificates
{
    public const string AuthorityFile = "ca.pem", AuthorityKeyFile = "ca.key";

    /// <summary>Writes <c>ca.pem</c>/<c>ca.key</c> (made unless present) and <c>NAME.pem</c>/<c>NAME.key</c> for each name; returns the files written.</summary>
    public static IReadOnlyList<string> Write(string folder, IReadOnlyList<string> names, IReadOnlyList<string> hosts, TimeSpan validity)
    {
        foreach (var n in names)
            if (n.Length == 0 || n.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || n.StartsWith('.'))
                throw new StreamingException($"--names: '{n}' is not a usable file name");
        Directory.CreateDirectory(folder);
        var written = new List<string>();
        var (ca, caKey) = Authority(folder, validity, written);
        using (caKey)
        using (ca)
        {
            foreach (var name in names)
            {
                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var request = new CertificateRequest($"CN={name}, O=streaming cluster", key, HashAlgorithmName.SHA256);
                request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
                request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
                request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
                request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
                request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
                var san = new SubjectAlternativeNameBuilder();
                foreach (var host in new[] { name, "localhost", "127.0.0.1" }.Concat(hosts).Distinct(StringComparer.Ordinal))
                {
                    if (IPAddress.TryParse(host, out var ip)) san.AddIpAddress(ip);
                    else san.AddDnsName(host);
                }
                request.CertificateExtensions.Add(san.Build());
                var serial = RandomNumberGenerator.GetBytes(16);
                serial[0] &= 0x7F;
                using var cert = request.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.Add(validity), serial);
                written.Add(WritePem(Path.Combine(folder, name + ".pem"), cert.ExportCertificatePem(), secret: false));
                written.Add(WritePem(Path.Combine(folder, name + ".key"), key.ExportPkcs8PrivateKeyPem(), secret: true));
            }
        }
        return written;
    }

    /// <summary>The CA in <paramref name="folder"/>, or a new one (self-signed, may sign node certificates only).</summary>
    private static (X509Certificate2 Ca, ECDsa Key) Authority(string folder, TimeSpan validity, List<string> written)
    {
        string pem = Path.Combine(folder, AuthorityFile), keyFile = Path.Combine(folder, AuthorityKeyFile);
        if (File.Exists(pem) && File.Exists(keyFile))
        {
            var existing = X509Certificate2.CreateFromPemFile(pem, keyFile);
            return (existing, existing.GetECDsaPrivateKey() ?? throw new StreamingException($"{keyFile}: not an ECDSA key"));
        }
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=streaming cluster CA, O=streaming cluster", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.Add(validity + TimeSpan.FromDays(1)));
        written.Add(WritePem(pem, ca.ExportCertificatePem(), secret: false));
        written.Add(WritePem(keyFile, key.ExportPkcs8PrivateKeyPem(), secret: true));
        return (ca, key);
    }

    /// <summary>A PEM file, written atomically; a key readable by its owner only.</summary>
    private static string WritePem(string path, string pem, bool secret)
    {
        if (!secret || OperatingSystem.IsWindows())
        {
            AtomicFile.WriteAllText(path, pem + "\n");
            return path;
        }
        // Created readable by its owner alone, before a byte of the key is in it; then renamed into place.
        string temp = path + ".tmp-" + Environment.ProcessId;
        using (var stream = new FileStream(temp, new FileStreamOptions
               {
                   Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               }))
        using (var writer = new StreamWriter(stream))
            writer.Write(pem + "\n");
        File.Move(temp, path, overwrite: true);
        return path;
    }
}
