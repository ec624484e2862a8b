using System.Globalization;
using System.Net;
using Streaming.Core;

namespace Streaming.Daemon;

/// <summary>The rules for an HTTP address and its bearer token, shared by the daemon (<c>http.listen</c>, <c>http.token_file</c>) and <c>cluster status --serve</c>.</summary>
public static class HttpListen
{
    /// <summary>
    /// An address as an IP address (null: localhost, loopback on IPv4 and IPv6) and port. Anything but loopback, in any
    /// spelling (<c>0</c>, <c>[::0]</c>, <c>*</c>, a LAN address), needs <paramref name="allowRemote"/>; host names other
    /// than localhost are refused, since what they resolve to can change. <paramref name="what"/> starts each message;
    /// <paramref name="allowHint"/> says how to allow a remote address.
    /// </summary>
    public static (IPAddress? Address, int Port) Parse(string listen, bool allowRemote, string what, string allowHint = "pass --allow-remote to mean it")
    {
        int colon = listen.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(listen[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
            throw new StreamingException($"{what} '{listen}' must be host:port, for example 127.0.0.1:8617");
        string host = listen[..colon];
        IPAddress? address;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) address = null; // loopback, IPv4 and IPv6
        else if (host is "*" or "+") address = IPAddress.IPv6Any;
        else if (host is "0") address = IPAddress.Any; // as in 0:8617
        else
        {
            string literal = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
            // Only the dotted-quad or IPv6 forms: IPAddress.Parse also takes "0" or "127.1" as IPv4 shorthands.
            bool plain = literal.Contains(':') || (literal.Count(c => c == '.') == 3 && literal.All(c => char.IsAsciiDigit(c) || c == '.'));
            if (!plain || !IPAddress.TryParse(literal, out address))
                throw new StreamingException($"{what} '{listen}': the host must be localhost or an IP address (127.0.0.1, [::1], 0.0.0.0, [::])");
        }
        bool loopback = address is null || IPAddress.IsLoopback(address);
        if (!loopback && !allowRemote)
            throw new StreamingException($"{what} '{listen}' is reachable from other machines ({(address!.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) ? "every interface" : "not loopback")}); {allowHint}, and consider a token");
        return (address, port);
    }

    /// <summary>The one token in <paramref name="path"/>; refuses a missing file, or a token shorter than 16 characters or with spaces.</summary>
    public static string ReadToken(string path, string what)
    {
        if (!File.Exists(path)) throw new StreamingException($"{what} {path} does not exist");
        string token = File.ReadAllText(path).Trim();
        if (token.Length < 16 || token.Any(char.IsWhiteSpace))
            throw new StreamingException($"{what} {path} must hold one token of at least 16 characters, no spaces");
        return token;
    }

    /// <summary>A page embedded in this assembly (the dashboards: no file, no CDN), read once.</summary>
    public static Lazy<string> EmbeddedPage(string name) => new(() =>
    {
        using var stream = typeof(HttpListen).Assembly.GetManifestResourceStream(name) ?? throw new InvalidOperationException($"{name} is not embedded");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    /// <summary>Has Kestrel listen where <see cref="Parse"/> said: localhost on IPv4 and IPv6, every interface, or one address.</summary>
    public static void Bind(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions k, IPAddress? address, int port)
    {
        if (address is null) k.ListenLocalhost(port);
        else if (address.Equals(IPAddress.IPv6Any) || address.Equals(IPAddress.Any)) k.ListenAnyIP(port);
        else k.Listen(address, port);
    }
}
