import Foundation

/// How to reach a RabbitMQ broker: parsed from an `amqp://` or `amqps://` URL.
///
/// The URL follows RabbitMQ's URI specification:
/// `amqp[s]://user:password@host:port/vhost?heartbeat=30&connection_timeout=10000`.
/// For `amqps`, TLS is on with peer and hostname verification; the query keys `cacertfile`,
/// `certfile` and `keyfile` name PEM files, and `verify=verify_none` turns verification off
/// (never do that in production).
public struct AMQPConfiguration: Sendable, Equatable {
    /// TLS settings for `amqps` connections.
    public struct TLS: Sendable, Equatable {
        /// PEM file of the certificate authorities trusted to sign the broker's certificate.
        public var caCertificatePath: String?
        /// PEM certificate and key presented to the broker (mutual TLS), both or neither.
        public var certificatePath: String?
        /// PEM private key for `certificatePath`.
        public var keyPath: String?
        /// Check the broker's certificate chain.
        public var verifyPeer: Bool = true
        /// Check that the broker's certificate names `host`.
        public var verifyHostname: Bool = true

        /// TLS with verification on and the system's defaults otherwise.
        public init() {}
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var virtualHost: String
    /// Heartbeat interval negotiated with the broker; zero turns heartbeats off.
    public var heartbeat: Duration
    /// How long connecting and logging in may take.
    public var connectTimeout: Duration
    /// TLS settings, or nil for plain TCP.
    public var tls: TLS?
    /// Shown in the broker's management tools.
    public var connectionName: String

    /// Parses an AMQP URL; throws ``AMQPError`` of kind `.invalidURL` naming what is wrong.
    public init(url: String, connectionName: String = "mingus") throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw AMQPError(.invalidURL, "invalid AMQP URL: cannot parse it (expected amqp://user:password@host:port/vhost)")
        }
        switch scheme {
        case "amqp": tls = nil
        case "amqps": tls = TLS()
        default:
            throw AMQPError(.invalidURL, "invalid AMQP URL: scheme '\(scheme)' is not amqp or amqps")
        }
        guard let host = components.host, !host.isEmpty else {
            throw AMQPError(.invalidURL, "invalid AMQP URL: no host")
        }
        self.host = host
        self.port = components.port ?? (tls == nil ? 5672 : 5671)
        self.user = components.user?.removingPercentEncoding ?? "guest"
        self.password = components.password?.removingPercentEncoding ?? "guest"
        // "amqp://host" and "amqp://host/" both mean the default virtual host "/".
        let path = components.percentEncodedPath
        let vhost = path.hasPrefix("/") ? String(path.dropFirst()) : path
        self.virtualHost = vhost.isEmpty ? "/" : (vhost.removingPercentEncoding ?? vhost)
        self.heartbeat = .seconds(30)
        self.connectTimeout = .seconds(10)
        self.connectionName = connectionName

        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "heartbeat":
                guard let seconds = Int(value), seconds >= 0, seconds <= 65535 else {
                    throw AMQPError(.invalidURL, "invalid AMQP URL: heartbeat must be whole seconds, got '\(value)'")
                }
                heartbeat = .seconds(seconds)
            case "connection_timeout":
                guard let milliseconds = Int(value), milliseconds > 0 else {
                    throw AMQPError(.invalidURL, "invalid AMQP URL: connection_timeout must be milliseconds, got '\(value)'")
                }
                connectTimeout = .milliseconds(milliseconds)
            case "cacertfile", "certfile", "keyfile", "verify", "server_name_indication":
                guard tls != nil else {
                    throw AMQPError(.invalidURL, "invalid AMQP URL: '\(item.name)' needs the amqps scheme")
                }
                switch item.name {
                case "cacertfile": tls?.caCertificatePath = value
                case "certfile": tls?.certificatePath = value
                case "keyfile": tls?.keyPath = value
                case "verify":
                    guard value == "verify_peer" || value == "verify_none" else {
                        throw AMQPError(.invalidURL, "invalid AMQP URL: verify must be verify_peer or verify_none")
                    }
                    tls?.verifyPeer = value == "verify_peer"
                    tls?.verifyHostname = value == "verify_peer"
                default: break
                }
            default:
                throw AMQPError(.invalidURL, "invalid AMQP URL: unknown query parameter '\(item.name)'")
            }
        }
        if (tls?.certificatePath == nil) != (tls?.keyPath == nil) {
            throw AMQPError(.invalidURL, "invalid AMQP URL: certfile and keyfile go together")
        }
    }

    /// The URL without its password, for logs and error messages.
    public var redactedDescription: String {
        "\(tls == nil ? "amqp" : "amqps")://\(user)@\(host):\(port)/\(virtualHost == "/" ? "" : virtualHost)"
    }
}

extension AMQPConfiguration {
    /// The brokers of a cluster, from a comma-separated list of URLs
    /// (`amqp://u:p@node1:5672/,amqp://u:p@node2:5672/`) or one URL with several hosts
    /// (`amqp://u:p@node1:5672,node2:5672,node3:5672/vhost?heartbeat=10`: the others take the
    /// first one's scheme, credentials, virtual host and options). A single URL is a list of one.
    public static func brokers(_ list: String, connectionName: String = "mingus") throws -> [AMQPConfiguration] {
        let items = list.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard items.count > 1 else { return [try AMQPConfiguration(url: list, connectionName: connectionName)] }
        if items.contains(where: { $0.isEmpty }) {
            throw AMQPError(.invalidURL, "invalid AMQP URL list: an empty entry between commas")
        }
        if items.allSatisfy({ $0.contains("://") }) {
            return try items.map { try AMQPConfiguration(url: $0, connectionName: connectionName) }
        }
        // One URL, several hosts: scheme://[userinfo@]host1[:port],host2[:port]…[/vhost][?query].
        guard let schemeEnd = list.range(of: "://") else {
            throw AMQPError(.invalidURL, "invalid AMQP URL list: mix of URLs and bare hosts")
        }
        let afterScheme = list[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        let rest = afterScheme[authorityEnd...]
        var userInfo = ""
        var hosts = Substring(authority)
        if let at = authority.lastIndex(of: "@") {
            userInfo = String(authority[...at])
            hosts = authority[authority.index(after: at)...]
        }
        guard hosts.contains(",") else {
            throw AMQPError(.invalidURL, "invalid AMQP URL list: mix of URLs and bare hosts")
        }
        let prefix = String(list[..<schemeEnd.upperBound])
        return try hosts.split(separator: ",", omittingEmptySubsequences: false).map { host in
            guard !host.isEmpty, !host.contains("://") else {
                throw AMQPError(.invalidURL, "invalid AMQP URL list: mix of URLs and bare hosts")
            }
            return try AMQPConfiguration(url: prefix + userInfo + host + rest, connectionName: connectionName)
        }
    }
}
